"""Ordos fertility-support assistant: the policy engine, search and web app.

Nothing in this package imports Rasa; actions/ and bot.web call into it.
"""
