import datetime as dt

import pytest

from bot.text import mask_personal_data, normalize, normalize_keep_offsets
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


@pytest.mark.parametrize("raw, masked", [
    ("身份证150602199001011234", "身份证150***********1234"),
    ("身份证15060219900101123X。", "身份证150***********123X。"),
    ("电话13912345678", "电话139****5678"),
    ("电话 139-1234-5678", "电话 139-****-5678"),
    ("座机0477-8581234", "座机0477-*****34"),
    ("育儿假10天，2023年11月22日", "育儿假10天，2023年11月22日"),
])
def test_mask_personal_data(raw, masked):
    assert mask_personal_data(raw) == masked


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
