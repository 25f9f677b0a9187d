import datetime as dt

import pytest

from bot.text import mask_personal_data, mask_structure, normalize, normalize_keep_offsets, strip_unsafe
from bot.understand import UNKNOWN, parse_bool, parse_child_order, parse_count, parse_date, parse_hukou, parse_role

TODAY = dt.date(2026, 11, 28)


@pytest.mark.parametrize("raw, expected", [
    ("產假多少天", "产假多少天"),
    ("ＡＢＣ１２３", "ABC123"),
    ("育儿假😀几天？？？", "育儿假 几天?"),
    ("  分娩补贴\u200b  ", "分娩补贴"),
    ("", ""),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_caps_length():
    assert len(normalize("长" * 5000)) == 500


def test_keep_offsets_keeps_length():
    for raw in ["產假😀多少天", "ＡＢＣ 鄂爾多斯", "<script>alert(1)</script>"]:
        assert len(normalize_keep_offsets(raw)) == len(raw)
    assert normalize_keep_offsets("產假") == "产假"


def test_leading_slash_never_becomes_an_intent_command():
    assert normalize_keep_offsets("／restart") == "／restart"
    assert normalize_keep_offsets("  /greet") == "  ／greet"
    assert normalize_keep_offsets("a/b") == "a/b"


# What citizens type, and what must be stored. Positive rows: personal data,
# however it is written. Negative rows: the ordinary numbers of this policy
# (dates, amounts, counts, ages, years, clause numbers) stay as typed.
MASKING_TABLE = [
    # ID cards: 18 digits, X check digit, spaces or dashes, full-width, 15-digit first generation
    ("身份证150602199001011234", "身份证150***********1234"),
    ("身份证15060219900101123X。", "身份证150***********123X。"),
    ("身份证号15060219900101123x", "身份证号150***********123x"),
    ("150602 19900101 1234", "150*** ******** 1234"),
    ("150602-1990-0101-123X", "150***-****-****-123X"),
    ("１５０６０２１９９００１０１１２３４", "150***********1234"),
    ("老身份证150602900101123", "老身份证150********1123"),
    ("ID150602199001011234号", "ID150***********1234号"),
    # Mobile numbers: plain, spaced, dashed, dotted, full-width, +86, dictated in Chinese numerals
    ("电话13912345678", "电话139****5678"),
    ("电话 139-1234-5678", "电话 139-****-5678"),
    ("138.1234.5678", "138.****.5678"),
    ("1381 234 5678", "138* *** 5678"),
    ("１３８１２３４５６７８", "138****5678"),
    ("手机：１３８－１２３４－５６７８", "手机：138-****-5678"),
    ("+86 138 1234 5678", "+86 138 **** 5678"),
    ("+8613812345678", "+86138****5678"),
    ("008613812345678", "0086138****5678"),
    ("幺三八一二三四五六七八", "138****5678"),
    ("孩子3岁 13912345678", "孩子3岁 139****5678"),
    ("13912345678 2个孩子", "139****5678 2个孩子"),
    ("138\u200b1234\u200b5678", "138 **** 5678"),
    ("😀13912345678😀", "😀139****5678😀"),
    # Landlines: dash, no dash, brackets (full-width too), area code 010, +86, local number after a phone word
    ("座机0477-8581234", "座机0477-*****34"),
    ("04778123456", "0477*****56"),
    ("(0477)8123456", "(0477)*****56"),
    ("（０４７７）８１２３４５６", "（0477)*****56"),
    ("0477 8123456", "0477 *****56"),
    ("010-12345678", "010-******78"),
    ("+86-10-12345678", "+86-10-******78"),
    ("我家电话8123456", "我家电话*****56"),
    # Bank cards (13-19 digits passing the Luhn check)
    ("卡号6222021234567890128", "卡号***************0128"),
    ("卡号 6222 0212 3456 7890 128", "卡号 **** **** **** ***0 128"),
    ("4111-1111-1111-1111", "****-****-****-1111"),
    # E-mail addresses
    ("邮箱zhang.san@example.com谢谢", "邮箱z********@example.com谢谢"),
    ("我的邮箱12345678@qq.com", "我的邮箱1*******@qq.com"),
    ("ＺＨＡＮＧ＠ＱＱ．ＣＯＭ", "Z****@QQ.COM"),
    # Ordinary numbers stay as typed
    ("育儿假10天，2023年11月22日", "育儿假10天，2023年11月22日"),
    ("孩子2024年3月5日出生", "孩子2024年3月5日出生"),
    ("出生日期20240305", "出生日期20240305"),
    ("2024-03-05", "2024-03-05"),
    ("２０２３年１１月２２日", "２０２３年１１月２２日"),
    ("家里3个孩子，老大12岁", "家里3个孩子，老大12岁"),
    ("补贴5000元还是10000元", "补贴5000元还是10000元"),
    ("买房首付300000元", "买房首付300000元"),
    ("2019 2021 2023 2024年各生了一个", "2019 2021 2023 2024年各生了一个"),
    ("第二（四）1条", "第二（四）1条"),
    ("热线12345", "热线12345"),
    ("4111 1111 1111 1112", "4111 1111 1111 1112"),
    ("1381234567", "1381234567"),
    ("我38岁，孩子1岁8个月", "我38岁，孩子1岁8个月"),
    ("", ""),
]


@pytest.mark.parametrize("raw, masked", MASKING_TABLE)
def test_mask_personal_data(raw, masked):
    assert mask_personal_data(raw) == masked


def _masked_is_stable(masked: str) -> None:
    """Whatever normalisation the text goes through later (the NLU's, the
    search's), nothing new appears to mask: no number comes back in clear."""
    for later in (normalize_keep_offsets(masked), normalize(masked), normalize_keep_offsets(masked).lower()):
        assert mask_personal_data(later) == strip_unsafe(later), (masked, later)


@pytest.mark.parametrize("raw", [raw for raw, _ in MASKING_TABLE])
def test_masked_text_stays_masked_after_normalisation(raw):
    _masked_is_stable(mask_personal_data(raw))


def test_masking_is_stable_on_random_mixtures_of_numbers_and_separators():
    import random

    rng = random.Random(20231122)
    alphabet = list("0123456789０１２３４５６７８９ -.()（）－+＋@xX孩子岁电话") + ["\u200b", "😀", "\u3000"]
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        masked = mask_personal_data(raw)
        assert len(masked) == len(raw)
        _masked_is_stable(masked)


def test_masking_keeps_length_and_the_citizens_own_characters():
    raw = "產假多少天？我电话１３９１２３４５６７８😀"
    assert mask_personal_data(raw) == "產假多少天？我电话139****5678😀"


def test_lone_surrogates_and_control_characters_never_raise():
    text = "育儿假\ud800几天\x00？"
    assert normalize(text) == "育儿假 几天 ?"
    assert normalize_keep_offsets(text) == "育儿假 几天 ?"
    assert mask_personal_data(text) == "育儿假\ufffd几天 ？"
    assert strip_unsafe("a\udfffb\x00c\td\n") == "a\ufffdb c\td\n"
    mask_personal_data(text).encode("utf-8")


def test_mask_structure_masks_strings_and_long_integers():
    value = {"phone": "13912345678", "n": 13912345678, "age": 3, "ok": True, "x": 0.5,
             "list": [{"mail": "a.b@example.com"}], "电话13912345678": 1}
    assert mask_structure(value) == {"phone": "139****5678", "n": "139****5678", "age": 3, "ok": True, "x": 0.5,
                                     "list": [{"mail": "a**@example.com"}], "电话139****5678": 1}
    with pytest.raises(ValueError):
        mask_structure({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})


@pytest.mark.parametrize("text, value", [
    ("是", True), ("是的", True), ("对", True), ("嗯", True), ("有", True),
    ("不是", False), ("没有", False), ("否", False), ("木有", False),
    ("不知道", UNKNOWN), ("不清楚", UNKNOWN), ("啊啊啊", None),
])
def test_parse_bool(text, value):
    assert parse_bool(text) == value


@pytest.mark.parametrize("text, value", [("老三", 3), ("第二个孩子", 2), ("二胎", 2), ("3", 3), ("头胎", 1),
                                         ("第三个", 3), ("不清楚", UNKNOWN), ("嗯", None)])
def test_parse_child_order(text, value):
    assert parse_child_order(text) == value


@pytest.mark.parametrize("text, value", [("家里三个孩子", 3), ("仨娃", 3), ("2", 2), ("俩孩子", 2)])
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text, value", [
    ("2024年5月1日", dt.date(2024, 5, 1)), ("2024-03-05", dt.date(2024, 3, 5)), ("2024年3月", dt.date(2024, 3, 1)),
    ("去年3月", dt.date(2025, 3, 1)), ("前年十二月五号", dt.date(2024, 12, 5)), ("两岁半", dt.date(2024, 5, 28)),
    ("8个月", dt.date(2026, 3, 28)), ("2030年1月1日", None), ("2024年2月30日", None), ("不知道", UNKNOWN),
])
def test_parse_date(text, value):
    assert parse_date(text, TODAY) == value


@pytest.mark.parametrize("text, role", [("宝妈", "mother"), ("我是孩子他爸", "father"), ("男方", "father"),
                                        ("我是妈妈", "mother"), ("不好说", None)])
def test_parse_role(text, role):
    assert parse_role(text) == role


@pytest.mark.parametrize("text, value", [("本地户口", True), ("鄂尔多斯户口", True), ("外地的", False),
                                         ("不是本地的", False), ("是", True), ("不知道", UNKNOWN)])
def test_parse_hukou(text, value):
    assert parse_hukou(text) == value
