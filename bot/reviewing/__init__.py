"""The policy team's review workspace: what the assistant failed to answer,
turned into training data and new answers.

The web pages live in bot.web.review; this package does the work without a
web request: the inbox query (inbox), the conversation around an item read
from Rasa's tracker store (conversations), the team's changes with their audit
(work), re-checking questions against the current model (recheck), the NLU
export with its conflict checks (export) and the dashboard's figures and
charts (dashboard). Similar questions are grouped by bot.grouping.
"""
