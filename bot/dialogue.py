"""One turn of the conversation, decided without Rasa: state and message in, replies and state out.

Rasa understands the message (intent, ranking, entities) and keeps the state
in slots; this module decides what to say. Every message can carry facts
(bot.understand.extract_facts); a running eligibility check takes them, asks
only for what is still missing, and answers a side question before it goes
on; a follow-up without a topic of its own is read against the last topic.
One reply never repeats a message, and an answer is never sent twice word
for word on consecutive turns.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from . import assistant
from .config import Settings
from .eligibility import ELIGIBLE, INELIGIBLE, Result, evaluate
from .eligibility import UNKNOWN as STATUS_UNKNOWN
from .knowledge import Knowledge
from .render import Reply, button, render_answer, render_departments, render_verdict
from .search import SearchIndex
from .understand import UNKNOWN, Context, date_range, extract_facts

# Slots this module reads and writes besides one slot per fact.
STATE_SLOTS = ("check_benefit", "asked_fact", "asked_back", "last_answer", "last_benefit", "last_question",
               "feedback_asked", "answers_given", "last_reply")

CONTROL_INTENTS = ("greet", "goodbye", "thank", "bot_challenge", "human_handoff", "restart_conversation", "cancel",
                   "feedback_helpful", "feedback_unhelpful", "ask_capabilities", "out_of_scope")
ANSWERISH_INTENTS = ("inform", "affirm", "deny", "dont_know", "nlu_fallback", "check_eligibility")
# Below this an ask_<topic> intent is not trusted to change the subject inside a check.
SIDE_QUESTION_CONFIDENCE = 0.6
# "can I get ...": the citizen wants a verdict, not the general answer.
CAN_I = re.compile(r"能不能|能否|可不可以|可以.{0,12}[吗么嘛]|能.{0,14}[吗么嘛不]|符合|够条件|有没有(?:我的)?份|有份|"
                   r"有.{0,6}补贴[吗么嘛]|给.{0,4}补[贴助][吗么嘛]|享受.{0,8}[吗么嘛]|算不算|行不行|管不管|能领|能拿|能申请|"
                   r"能享受|能休|可以休|可以领|可以申请|可以享受|咋领|怎么样才能|我家.{0,10}[吗么嘛]|[吗么嘛]$")
# A message that names another benefit to check is not a follow-up of the last one.
CAN_I_OTHER = re.compile(r"补贴|补助|假|公积金|住房|同校|入园|入托|调训|奖励|扶助|扣除")
FOLLOW_UP = re.compile(r"^(?:那|那么|那如果|如果|要是|假如|不是|不对|可是|但是|还有|另外)|呢[？?]?$")
YES_NO_START = re.compile(r"^(?:是|对|嗯|有|没有|没|不是|不|否|不知道|不清楚|不确定)")
FEEDBACK_AFTER_ANSWERS = 2
# "Which department": named outright; "去哪办/怎么申请" alone is about procedure, which the plan leaves out.
EXPLICIT_DEPARTMENT = re.compile(r"部门|哪个局|哪个单位|哪家单位|谁管|归谁|找谁|谁负责|哪里负责|哪个机构")
SECOND_QUESTION_SPLIT = re.compile(r"[？?。；;！!]|还有|另外|顺便问|再问一下|以及")


@dataclass
class Message:
    text: str
    intent: str = ""
    confidence: float = 0.0
    ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Turn:
    replies: list[Reply] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)     # slot -> new value
    review: list[dict[str, Any]] = field(default_factory=list)   # items for the policy team
    restart: bool = False

    def say(self, reply: Reply) -> None:
        if all(r.text != reply.text for r in self.replies):
            self.replies.append(reply)


class Dialogue:
    def __init__(self, kb: Knowledge, index: SearchIndex, settings: Settings):
        self.kb, self.index, self.settings = kb, index, settings
        self.fact_names = set(assistant.fact_slots(kb))

    # -- state ------------------------------------------------------------
    def facts_of(self, slots: dict[str, Any]) -> dict[str, Any]:
        return {n: slots.get(n) for n in self.fact_names if slots.get(n) is not None}

    # -- the turn ---------------------------------------------------------
    def respond(self, slots: dict[str, Any], msg: Message, today: dt.date | None = None) -> Turn:
        today = today or dt.date.today()
        turn = Turn()
        kb = self.kb
        text = (msg.text or "").strip()
        intent = msg.intent or ""
        check = slots.get("check_benefit") if slots.get("check_benefit") in kb.benefits else None
        asked = slots.get("asked_fact") if check else None
        facts = self.facts_of(slots)
        context_benefit = check or slots.get("last_benefit")
        ctx = Context(benefit=context_benefit, asked=asked,
                      child_order=facts.get("child_order") if isinstance(facts.get("child_order"), int) else None)
        said = {name: f.value for name, f in extract_facts(text, ctx, today, self.fact_names).items()}
        if asked == "mother_hukou_ordos" and "hukou_ordos" in said and asked not in said:
            said[asked] = said["hukou_ordos"]   # an answer to "is the mother registered here?"
        control = intent in CONTROL_INTENTS and msg.confidence >= 0.7
        if check and asked and asked not in said and not control and (not said or YES_NO_START.match(text)):
            value = assistant.to_fact(kb, asked, text, today)
            if value is not None:
                said[asked] = assistant.slot_value(value)
        topic = self._topic(msg)
        benefit_named = self._benefit_named(msg, topic)

        if intent == "restart_conversation" and not said:
            return self._restart(turn)
        if intent == "human_handoff":
            return self._handoff(turn, slots, text)
        if intent in ("feedback_helpful", "feedback_unhelpful") and not said and not check:
            return self._feedback(turn, slots, intent)
        if intent == "cancel" and not said:
            if check:
                turn.say(Reply("好的，已取消本次资格查询。您可以继续提问。", [button("你能干什么")], kind="other"))
                turn.slots.update(check_benefit=None, asked_fact=None, asked_back=0)
            else:
                turn.say(Reply("好的。还有其他问题可以继续问我。", [button("你能干什么")], kind="other"))
            return self._finish(turn, slots, text)

        if check:
            self._in_check(turn, slots, msg, check, asked, facts, said, topic, benefit_named, today)
        else:
            self._no_check(turn, slots, msg, facts, said, topic, benefit_named, today)
        return self._finish(turn, slots, text)

    # -- inside a check ---------------------------------------------------
    def _in_check(self, turn, slots, msg, check, asked, facts, said, topic, benefit_named, today) -> None:
        kb = self.kb
        text = msg.text or ""
        wants_other_check = (benefit_named and benefit_named != check and
                             (msg.intent == "check_eligibility" or CAN_I.search(text)))
        if wants_other_check:
            self._start_check(turn, slots, benefit_named, facts, said, today, text)
            return
        gap = self._not_covered(text, topic or kb.benefits[check].answer, check)
        if gap and not EXPLICIT_DEPARTMENT.search(text):
            turn.slots.update(said)
            turn.say(gap)
            turn.say(Reply("我们继续刚才的资格查询。", kind="other"))
            merged = {**facts, **said}
            self._ask(turn, check, self._next_fact(check, merged, today), merged, today, again=True)
            return
        relevant = {k: v for k, v in said.items()}
        if relevant:
            merged = {**facts, **relevant}
            turn.slots.update(relevant)
            self._continue_check(turn, slots, check, merged, today, corrected=self._corrected(facts, relevant))
            return
        side = self._side_question(turn, slots, msg, topic, benefit_named, today)
        if side:
            turn.say(Reply("我们继续刚才的资格查询。", kind="other"))
            self._ask(turn, check, asked or self._next_fact(check, facts, today), facts, today, again=True)
            return
        # Not understood as an answer nor as a question: ask back once, then note it as unknown.
        if int(slots.get("asked_back") or 0) >= 1 and asked:
            turn.slots[asked] = UNKNOWN
            turn.slots["asked_back"] = 0
            turn.say(Reply(f"这一项（{kb.facts[asked].label}）先记为“不确定”。", kind="other"))
            self._continue_check(turn, slots, check, {**facts, asked: UNKNOWN}, today)
            return
        turn.slots["asked_back"] = int(slots.get("asked_back") or 0) + 1
        if asked:
            reply = assistant.not_understood_reply(kb, asked)
            reply.kind, reply.benefit, reply.fact = "ask", check, asked
            turn.say(reply)
        else:
            self._continue_check(turn, slots, check, facts, today)

    def _corrected(self, before: dict[str, Any], said: dict[str, Any]) -> list[str]:
        return [k for k, v in said.items() if before.get(k) not in (None, UNKNOWN) and before.get(k) != v]

    def _side_question(self, turn, slots, msg, topic, benefit_named, today) -> bool:
        """Answer a question asked in the middle of a check; False when it is none."""
        kb = self.kb
        text = msg.text or ""
        check = slots.get("check_benefit")
        answer_of_check = kb.benefits[check].answer if check in kb.benefits else None
        if EXPLICIT_DEPARTMENT.search(text) or (msg.intent == "ask_department" and msg.confidence >= 0.7):
            aid = topic or answer_of_check
            if aid:
                turn.say(self._department(aid))
                return True
        gap = self._not_covered(text, topic or answer_of_check, check)
        if gap:
            turn.say(gap)
            return True
        if assistant.DEPARTMENT_CUE.search(text) or msg.intent == "ask_department":
            aid = topic or answer_of_check
            if aid:
                turn.say(self._department(aid))
                return True
        if topic and (msg.confidence >= SIDE_QUESTION_CONFIDENCE or self._strong_search(text, topic)):
            turn.say(self._answer(slots, topic, text, repeat_ok=True))
            return True
        if msg.intent in ("greet", "thank", "bot_challenge", "goodbye", "ask_capabilities", "out_of_scope"):
            self._control(turn, msg.intent, slots, text)
            return True
        return False

    # -- no check running -------------------------------------------------
    def _no_check(self, turn, slots, msg, facts, said, topic, benefit_named, today) -> None:
        kb = self.kb
        text = msg.text or ""
        intent = msg.intent
        last_answer = slots.get("last_answer")
        last_benefit = slots.get("last_benefit")
        can_i = bool(CAN_I.search(text)) or intent == "check_eligibility"
        if topic is None and (said or can_i) and intent not in CONTROL_INTENTS:
            topic = self._searched_topic(text)
        topic_benefit = kb.answers[topic].benefit if topic else None
        benefit = benefit_named or topic_benefit

        if intent in CONTROL_INTENTS and not said and not benefit and intent not in ("cancel",):
            self._control(turn, intent, slots, text)
            return
        if intent == "check_eligibility" and not benefit:
            if said and last_benefit:
                self._start_check(turn, slots, last_benefit, facts, said, today, text)
            else:
                turn.slots.update(said)
                reply = assistant.ask_benefit_reply(kb)
                reply.kind = "ask"
                turn.say(reply)
            return
        if said and last_benefit in kb.benefits and not benefit_named and not CAN_I_OTHER.search(text) \
                and self._fit(said, last_benefit) > self._fit(said, topic_benefit) \
                and (topic_benefit is None or not self._strong_search(text, topic)
                     or self._fit(said, topic_benefit) == 0):
            # Facts about the last benefit, with no topic of their own: a follow-up ("那三孩呢",
            # "我老婆户口是外地的", "孩子一岁 按政策生的").
            self._start_check(turn, slots, last_benefit, facts, said, today, text)
            return
        dept_q = bool(assistant.DEPARTMENT_CUE.search(text)) or intent == "ask_department"
        gap_first = dept_q and not EXPLICIT_DEPARTMENT.search(text)
        if gap_first:
            gap = self._not_covered(text, topic or last_answer, benefit or last_benefit)
            if gap:
                turn.say(gap)
                return
        if dept_q:
            aid = topic if (topic and (msg.confidence >= 0.3 or self._strong_search(text, topic))) else None
            if aid is None and not self._names_topic(text):
                aid = last_answer if last_answer in kb.answers else None
            if aid:
                turn.say(self._department(aid))
                turn.slots.update(last_answer=aid, last_benefit=kb.answers[aid].benefit or last_benefit)
                return
            turn.say(assistant.department_reply(kb, self.index, text, self._entity(msg, "department")))
            return
        gap = self._not_covered(text, topic or last_answer, benefit or last_benefit)
        if gap and not (benefit and can_i and said):
            turn.say(gap)
            return
        if can_i and said and not benefit_named and topic_benefit:
            # The classifier's topic may be a neighbour ("产假休完了能调训吗" is about the rotation,
            # not maternity leave): the best search hit's benefit wins when the stated facts fit it better.
            searched = self._searched_topic(text)
            other = kb.answers[searched].benefit if searched else None
            if other and other != topic_benefit and self._fit(said, other) > self._fit(said, topic_benefit):
                benefit = other
        if benefit and (can_i or said) and (topic_benefit or benefit_named):
            self._start_check(turn, slots, benefit, facts, said, today, text)
            return
        if topic:
            turn.slots.update(said)
            turn.slots.update(last_answer=topic, last_benefit=topic_benefit or last_benefit)
            turn.say(self._answer(slots, topic, text))
            second = self._second_topic(text, topic)
            if second:
                turn.say(self._answer(slots, second, text, repeat_ok=True))
            self._maybe_feedback(turn, slots)
            return
        if said and last_benefit in kb.benefits:
            # A follow-up that only states facts ("那三孩呢", "我老婆是外地户口") is about the last benefit.
            self._start_check(turn, slots, last_benefit, facts, said, today, text)
            return
        if said:
            turn.slots.update(said)
            reply = assistant.menu_reply(kb)
            reply.text = "好的，已记下。" + "请问您想了解哪项政策？" + reply.text.split("。", 1)[-1]
            reply.kind = "menu"
            turn.say(reply)
            return
        if intent in ("affirm", "deny", "dont_know", "inform"):
            reply = assistant.menu_reply(kb)
            reply.text = "请问您想咨询哪方面的政策？" + reply.text.split("。", 1)[-1]
            reply.kind = "menu"
            turn.say(reply)
            return
        self._fallback(turn, msg)

    # -- pieces -----------------------------------------------------------
    def _topic(self, msg: Message) -> str | None:
        """The answer the message asks about: the intent, or the best of the ranking when the
        fallback classifier stepped in but the text shares a strong word with it."""
        aid = assistant.answer_id_for_intent(self.kb, msg.intent)
        if aid:
            return aid
        if msg.intent == "nlu_fallback":
            for item in msg.ranking[:2]:
                cand = assistant.answer_id_for_intent(self.kb, item.get("name"))
                if cand and item.get("confidence", 0) >= 0.3 and self._strong_search(msg.text, cand):
                    return cand
        return None

    def _fit(self, said: dict[str, Any], benefit: str | None) -> int:
        """How many of the stated facts the benefit's rule uses."""
        return len(set(said) & set(self._facts_of_benefit(benefit))) if benefit in self.kb.benefits else 0

    def _facts_of_benefit(self, benefit: str) -> list[str]:
        kb = self.kb
        return [m for c in kb.benefits[benefit].conditions for m in (kb.facts[c.fact].derived_from or (c.fact,))]

    def _second_topic(self, text: str, topic: str) -> str | None:
        """Two questions in one message ("产假多少天？育儿假呢"): the other part's topic, when
        that part alone clearly names another answer."""
        parts = [p for p in SECOND_QUESTION_SPLIT.split(text or "") if p and len(p.strip()) >= 3]
        if len(parts) < 2:
            return None
        for part in parts:
            hits = self.index.search(part, limit=1)["answers"]
            if hits and hits[0].id != topic and hits[0].score >= 1.5 * assistant.MIN_CLAUSE_SCORE \
                    and self._names_topic(part) and not self._strong_search(part, topic):
                return hits[0].id
        return None

    def _searched_topic(self, text: str) -> str | None:
        """The answer a question that states facts is about, when the classifier was unsure:
        the best search hit, if it is strong."""
        hits = self.index.search(text, limit=1)["answers"] if text else []
        return hits[0].id if hits and assistant.strong(hits[0]) and self._names_topic(text) else None

    def _strong_search(self, text: str, answer_id: str) -> bool:
        if not text:
            return False
        hits = self.index.search(text, limit=3)["answers"]
        return any(h.id == answer_id and assistant.strong(h) for h in hits)

    def _names_topic(self, text: str) -> bool:
        hits = self.index.search(text, limit=1)["answers"]
        if not hits or not assistant.strong(hits[0]):
            return False
        dept_terms = {t for d in self.kb.departments.values() for t in (d.name, *d.aliases)}
        words = [m for m in hits[0].matched if m not in dept_terms and not assistant.DEPARTMENT_CUE.search(m)
                 and m not in ("负责", "部门", "管理", "哪个", "找")]
        return bool(words)

    def _entity(self, msg: Message, name: str) -> str | None:
        for e in msg.entities or []:
            if e.get("entity") == name and isinstance(e.get("value"), str):
                return e["value"]
        return None

    def _benefit_named(self, msg: Message, topic: str | None) -> str | None:
        value = self._entity(msg, "benefit")
        if value:
            resolved = assistant.resolve_benefit(self.kb, self.index, value)
            if resolved:
                return resolved
        if msg.intent == "check_eligibility":
            hits = self.index.search(msg.text or "", limit=1)["answers"]
            if hits and assistant.strong(hits[0]) and self.kb.answers[hits[0].id].benefit \
                    and self._names_topic(msg.text or ""):
                return self.kb.answers[hits[0].id].benefit
        return None

    def _answer(self, slots, answer_id: str, text: str, repeat_ok: bool = False) -> Reply:
        if assistant.DEPARTMENT_CUE.search(text or ""):
            return self._department(answer_id)
        reply = render_answer(self.kb, answer_id, self.settings)
        reply.kind = "answer"
        if not repeat_ok and slots.get("last_reply") == reply.text:
            first = self.kb.answers[answer_id].text.split("。")[0]
            reply = Reply(f"这个问题上面刚回答过：{first}。您可以看看上面的完整答复，或换个角度继续问我。",
                          reply.buttons, reply.clauses, answer_id, kind="answer")
        return reply

    def _department(self, answer_id: str) -> Reply:
        reply = render_departments(self.kb, answer_id, self.settings)
        reply.kind = "department"
        return reply

    def _not_covered(self, text: str, answer_id: str | None, benefit: str | None) -> Reply | None:
        try:
            from .coverage import not_covered
        except ImportError:
            return None
        reply = not_covered(self.kb, text, answer_id=answer_id, benefit_id=benefit, settings=self.settings)
        if reply is not None:
            reply.kind = "not_covered"
        return reply

    def _control(self, turn: Turn, intent: str, slots, text: str) -> None:
        s = self.settings
        if intent == "greet":
            reply = assistant.menu_reply(self.kb)
            reply.text = "您好！" + reply.text
            reply.kind = "greet"
        elif intent == "goodbye":
            reply = Reply("感谢您的咨询，再见！如有需要随时再来问我。", kind="other")
        elif intent == "thank":
            reply = Reply("不客气！还有其他问题可以继续问我。", kind="other")
        elif intent == "bot_challenge":
            reply = Reply(f"我是鄂尔多斯市生育支持政策智能助手（机器人），回答依据《实施方案》原文。"
                          f"需要人工服务请拨打{s.hotline}（{s.hotline_name}）。", kind="other")
        elif intent == "out_of_scope":
            reply = assistant.out_of_scope_reply(s)
            reply.kind = "out_of_scope"
            turn.review.append({"kind": "out_of_scope", "question": text, "intent": "out_of_scope"})
        else:  # ask_capabilities and anything else of the kind
            reply = assistant.menu_reply(self.kb)
            reply.kind = "menu"
        turn.say(reply)

    def _fallback(self, turn: Turn, msg: Message) -> None:
        reply, unanswered = assistant.fallback_reply(self.kb, self.index, self.settings, msg.text, msg.ranking)
        reply.kind = "fallback"
        turn.say(reply)
        # A fallback's real best guess is the first entry of the ranking that is not the fallback.
        guess = next((r for r in msg.ranking if r.get("name") != "nlu_fallback"), {})
        turn.review.append({"kind": "unanswered" if unanswered else "low_confidence", "question": msg.text,
                            "intent": guess.get("name"), "confidence": guess.get("confidence"),
                            "detail": {"ranking": msg.ranking[:5]} if msg.ranking else None})

    def _restart(self, turn: Turn) -> Turn:
        turn.say(Reply(f"好的，我们重新开始：之前说过的情况不会再用于回答。对话记录按隐私说明保存"
                       f"{self.settings.retention_days}天后自动删除。请问您想了解哪方面的政策？",
                       [button("你能干什么")], kind="other"))
        turn.restart = True
        return turn

    def _handoff(self, turn: Turn, slots, text: str) -> Turn:
        reply = assistant.handoff_reply(self.settings)
        reply.kind = "handoff"
        turn.say(reply)
        turn.slots.update(check_benefit=None, asked_fact=None, asked_back=0)
        turn.review.append({"kind": "handoff", "question": slots.get("last_question") or text,
                            "intent": "human_handoff", "answer_id": slots.get("last_answer")})
        return turn

    def _feedback(self, turn: Turn, slots, intent: str) -> Turn:
        s = self.settings
        question = slots.get("last_question") or ""
        if intent == "feedback_unhelpful":
            turn.review.append({"kind": "unhelpful", "question": question, "answer_id": slots.get("last_answer")})
            turn.say(Reply(f"抱歉没能帮到您，您的问题已记录，我们会改进答复。您也可以换个说法再问，"
                           f"或拨打{s.hotline}（{s.hotline_name}）咨询。", [button("转人工")], kind="feedback"))
        else:
            turn.review.append({"kind": "helpful", "question": question, "answer_id": slots.get("last_answer")})
            turn.say(Reply("感谢您的反馈！还有其他问题可以继续问我。", kind="feedback"))
        turn.slots["feedback_asked"] = True
        return turn

    def _maybe_feedback(self, turn: Turn, slots) -> None:
        """Ask once a conversation has settled (after a few answers), never after every reply."""
        given = int(slots.get("answers_given") or 0) + 1
        turn.slots["answers_given"] = given
        if not slots.get("feedback_asked") and given >= FEEDBACK_AFTER_ANSWERS:
            reply = assistant.feedback_prompt()
            reply.kind = "feedback"
            turn.say(reply)
            turn.slots["feedback_asked"] = True

    # -- the check ----------------------------------------------------------
    def evaluate(self, benefit: str, facts: dict[str, Any], today: dt.date) -> tuple[Result, bool]:
        """The verdict on what is known; a birth date known only as a range decides when both
        ends agree. Returns the result and whether an exact birth date is still needed."""
        known = self._implied(assistant.known_facts(self.kb, {k: v for k, v in facts.items()
                                                             if k != "birth_date"}))
        rng = date_range(facts.get("birth_date"))
        if rng is None:
            return evaluate(known, today, kb=self.kb, benefits=[benefit])[0], False
        first = evaluate({**known, "birth_date": rng[0]}, today, kb=self.kb, benefits=[benefit])[0]
        if rng[0] == rng[1]:
            return first, False
        last = evaluate({**known, "birth_date": rng[1]}, today, kb=self.kb, benefits=[benefit])[0]
        if first.status == last.status and first.missing == last.missing:
            return first, False
        return evaluate(known, today, kb=self.kb, benefits=[benefit])[0], True

    def _implied(self, facts: dict[str, Any]) -> dict[str, Any]:
        """Facts that follow from others: one child is the first; the third child makes a three-child family."""
        out = dict(facts)
        if out.get("children_count") == 1 and out.get("child_order") is None:
            out["child_order"] = 1
        if out.get("child_order") and out.get("children_count") is None and out["child_order"] >= 3:
            out["children_count"] = out["child_order"]
        return out

    def _next_fact(self, benefit: str, facts: dict[str, Any], today: dt.date) -> str | None:
        result, need_exact_date = self.evaluate(benefit, facts, today)
        told_unknown = {k for k, v in facts.items() if v == UNKNOWN}
        for m in result.missing:
            if m not in told_unknown:
                return m
        return None

    def _start_check(self, turn, slots, benefit, facts, said, today, text) -> None:
        kb = self.kb
        merged = {**facts, **said}
        turn.slots.update(said)
        turn.slots.update(check_benefit=benefit, asked_back=0, last_benefit=benefit,
                          last_answer=kb.benefits[benefit].answer, last_question=text)
        result, _ = self.evaluate(benefit, merged, today)
        if result.status == STATUS_UNKNOWN and self._next_fact(benefit, merged, today):
            turn.say(self._gist(benefit))
        self._continue_check(turn, slots, benefit, merged, today)

    def _gist(self, benefit: str) -> Reply:
        kb = self.kb
        b = kb.benefits[benefit]
        answer = kb.answers[b.answer]
        sentences = [s for s in re.split(r"(?<=[。；])", answer.text) if s.strip()]
        gist = "".join(sentences[:2]).strip()
        if len(gist) > 160:
            gist = sentences[0].strip()
        from .render import citation
        text = f"{gist}\n{citation(kb, answer.clauses)}\n下面帮您看看是否符合条件。"
        return Reply(text, [], list(answer.clauses), answer.id, kind="gist", benefit=benefit)

    def _continue_check(self, turn, slots, benefit, facts, today, corrected=None) -> None:
        result, need_exact_date = self.evaluate(benefit, facts, today)
        nxt = self._next_fact(benefit, facts, today)
        if result.status != STATUS_UNKNOWN or nxt is None:
            reply = render_verdict(self.kb, result, self.settings)
            if result.status == STATUS_UNKNOWN:
                labels = "、".join(self.kb.facts[m].label for m in result.missing)
                reply.text = reply.text.replace("结果仅供参考", f"还需确认：{labels}。\n结果仅供参考", 1)
            if corrected:
                reply.text = "已按您更正的情况重新判断：\n" + reply.text
            reply.kind, reply.benefit, reply.status = "verdict", benefit, result.status
            if not reply.departments:
                reply.departments = list(result.departments.get("lead") or [])
            answer = self.kb.answers[self.kb.benefits[benefit].answer]
            reply.buttons = [button(answer.questions[0]), button(f"{answer.title}找哪个部门")]
            turn.say(reply)
            turn.slots.update(check_benefit=None, asked_fact=None, asked_back=0, last_benefit=benefit,
                              last_answer=answer.id)
            self._maybe_feedback(turn, slots)
            return
        self._ask(turn, benefit, nxt, facts, today, exact_date=need_exact_date and nxt == "birth_date")

    def _ask(self, turn, benefit, fact, facts, today, again=False, exact_date=False) -> None:
        if fact is None:
            self._continue_check(turn, {}, benefit, facts, today)
            return
        reply = assistant.ask_fact_reply(self.kb, fact)
        question = self._question_for(benefit, fact)
        if exact_date:
            question = "需要孩子的具体出生日期才能判断。" + question
        reply.text = question
        reply.kind, reply.benefit, reply.fact = "ask", benefit, fact
        turn.say(reply)
        turn.slots.update(check_benefit=benefit, asked_fact=fact)

    def _question_for(self, benefit: str, fact: str) -> str:
        question_for = getattr(self.kb, "question_for", None)
        if callable(question_for):
            return question_for(benefit, fact)
        return self.kb.facts[fact].ask

    # -- after every turn ---------------------------------------------------
    def _finish(self, turn: Turn, slots, text: str) -> Turn:
        if not turn.replies:
            self._fallback(turn, Message(text))
        main = next((r for r in turn.replies if r.kind in ("answer", "verdict", "department", "not_covered")), None)
        turn.slots["last_reply"] = main.text if main is not None else None
        if main is not None:
            turn.slots["last_question"] = text
            if main.answer_id:
                turn.slots.setdefault("last_answer", main.answer_id)
        # Only what changed is sent back as slot events.
        turn.slots = {k: v for k, v in turn.slots.items() if slots.get(k) != v}
        return turn
