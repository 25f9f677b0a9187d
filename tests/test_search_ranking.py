"""What hotline staff type finds the right answer in the top 3: pinyin typed
without the IME (initials and full), abbreviations, synonyms, traditional
characters, typos and homophones, and terse keyword strings."""
import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from bot.search import QueryExpander, _Scores

STAFF_QUERIES = [
    # pinyin initials
    ("pcj", "paternity_leave"), ("yej", "parental_leave"), ("cj", "maternity_leave"), ("fmbt", "delivery_subsidy"),
    ("yebt", "childrearing_subsidy"), ("gjj", "housing_fund_loan"), ("gjjdk", "housing_fund_loan"),
    ("nxjy", "warm_home"), ("dszn", "only_child_care_leave"), ("txjd", "same_school_enrolment"),
    ("bzf", "rental_housing"), ("gs", "childcare_tax_deduction"), ("rtry", "childcare_tuition_subsidy"),
    ("csyjs", "birth_one_thing"), ("myss", "mother_infant_rooms"), ("PCJ", "paternity_leave"),
    # full pinyin, whole or still being typed
    ("yuerjia", "parental_leave"), ("peichanjia", "paternity_leave"), ("chanjia", "maternity_leave"),
    ("fenmianbutie", "delivery_subsidy"), ("yuerbutie", "childrearing_subsidy"), ("gongjijin", "housing_fund_loan"),
    ("nuanxinjiayuan", "warm_home"), ("tongxiao", "same_school_enrolment"), ("yuerj", "parental_leave"),
    ("geshui", "childcare_tax_deduction"), ("tuoyu butie", "childcare_operator_subsidy"),
    ("yunjian", "prenatal_check_subsidy"), ("pei chan jia", "paternity_leave"),
    # abbreviations and short terms
    ("陪产假", "paternity_leave"), ("同校", "same_school_enrolment"), ("保租房", "rental_housing"),
    ("育儿假", "parental_leave"), ("个税", "childcare_tax_deduction"), ("孕检", "prenatal_check_subsidy"),
    ("公积金", "housing_fund_loan"), ("暖心家园", "warm_home"), ("母婴室", "mother_infant_rooms"),
    ("失独", "special_families"), ("计生奖扶", "family_planning_families"),
    # synonyms
    ("三胎", "three_child_policy"), ("三胎有啥补贴", "childrearing_subsidy"), ("二胎分娩补助", "delivery_subsidy"),
    ("爸爸假几天", "paternity_leave"), ("带娃假", "parental_leave"), ("公租房", "rental_housing"),
    ("生娃补贴", "delivery_subsidy"),
    # traditional characters
    ("產假多少天", "maternity_leave"), ("育兒假", "parental_leave"), ("陪產假", "paternity_leave"),
    ("獨生子女陪護假", "only_child_care_leave"), ("住房公積金貸款", "housing_fund_loan"), ("分娩補貼", "delivery_subsidy"),
    # typos and homophones
    ("分免补贴", "delivery_subsidy"), ("育儿价", "parental_leave"), ("陪产价", "paternity_leave"),
    ("公基金", "housing_fund_loan"), ("暖新家园", "warm_home"), ("孕捡补贴", "prenatal_check_subsidy"),
    ("同效就读", "same_school_enrolment"),
    # terse keyword strings, as typed during a call
    ("三孩 公积金 贷款 上浮", "housing_fund_loan"), ("三孩 租房 提取", "housing_fund_withdrawal"),
    ("3岁以下 个税 扣除", "childcare_tax_deduction"), ("入托 补贴 二孩", "childcare_tuition_subsidy"),
    ("出生证 户口 联办", "birth_one_thing"), ("女职工 调训", "township_rotation"), ("弹性上班", "flexible_work"),
    ("课后服务", "after_school_care"), ("产前筛查", "obstetric_pediatric_services"),
    ("生育保险 三孩", "maternity_insurance"),
]


def test_the_list_covers_every_kind_of_staff_query():
    assert len(STAFF_QUERIES) >= 40
    ascii_queries = [q for q, _ in STAFF_QUERIES if q.replace(" ", "").isascii()]
    assert len(ascii_queries) >= 20


@pytest.mark.parametrize("query, answer_id", STAFF_QUERIES)
def test_right_answer_in_top_3(search_index, kb, query, answer_id):
    assert answer_id in kb.answers
    ids = [h.id for h in search_index.search(query)["answers"]][:3]
    assert answer_id in ids, f"{query!r}: {answer_id} not in top 3 {ids}"


def test_public_search_api_uses_the_same_expansion():
    from bot.web import create_app

    app = create_app()
    _, resp = app.test_client.get("/api/search", params={"q": "yuerjia"})
    assert resp.status == 200
    assert resp.json["answers"][0]["id"] == "parental_leave"
    assert "<mark>育儿假</mark>" in resp.json["answers"][0]["highlighted"]


@pytest.fixture(scope="module")
def expander(search_index):
    return search_index.expander


@pytest.mark.parametrize("letters, term", [
    ("pcj", "陪产假"), ("yuerjia", "育儿假"), ("gjj", "公积金"), ("fmbt", "分娩补贴"), ("yuerj", "育儿假"),
])
def test_letters_spell_policy_terms(expander, letters, term):
    assert term in expander.terms_for_letters(letters)


def test_letters_that_spell_two_terms_expand_to_both(expander):
    terms = expander.terms_for_letters("rtry")
    assert "入托" in terms and "入园" in terms


def test_single_letters_and_non_words_expand_to_nothing(expander):
    assert expander.terms_for_letters("p") == []
    assert expander.expand("zzzzqqq") == "zzzzqqq"


def test_chinese_query_without_abbreviation_or_typo_is_unchanged(expander):
    assert expander.expand("产假多少天") == "产假多少天"
    assert expander.expand("育儿补贴怎么领") == "育儿补贴怎么领"


def test_abbreviation_and_homophone_expand(expander):
    assert "保障性租赁住房" in expander.expand("保租房怎么申请")
    assert expander.expand("陪产价").endswith("陪产假")


def test_precomputed_bm25_scores_equal_rank_bm25(search_index):
    analyzer = search_index.analyzer
    corpus = [analyzer.tokens(d.index_text) for d in search_index.answers]
    reference, ours = BM25Okapi(corpus), _Scores(corpus)
    for query in ["产假多少天", "pcj", "三孩 公积金 贷款 上浮", "育儿补贴 育儿补贴", "完全无关的话", "分免补贴"]:
        tokens = analyzer.tokens(search_index.expander.expand(query))
        assert np.array_equal(reference.get_scores(tokens), ours.get_scores(tokens)), query


def test_expander_builds_from_a_word_list_alone():
    expander = QueryExpander(["陪产假", "育儿假"])
    assert expander.terms_for_letters("pcj") == ["陪产假"]
