"""Question-type cues that cut across topics.

"分娩补贴找哪个部门" is about the delivery subsidy *and* asks for a department:
the topic classifier finds the topic, this cue decides to answer with the
departments of its clause instead of the answer text.
"""
from __future__ import annotations

import re

DEPARTMENT_CUE = re.compile(r"哪个部门|什么部门|哪些部门|哪个单位|哪个局|找谁|找哪|归谁|谁管|谁负责|谁来管|哪里办|去哪办|"
                            r"哪儿办|主管部门|牵头|哪个机关|which department")
