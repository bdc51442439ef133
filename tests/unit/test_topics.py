"""Comment topics in five languages, from realistic sentences with inflected forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxstream.alerts.comment_tags import LexiconError, TopicTagger, load_tagger

TAGGER: TopicTagger = load_tagger()

CASES = [
    # English
    ("en", "The parcel never arrived and the courier did not call.", {"delivery"}),
    ("en", "Delivered two days late, tracking showed nothing.", {"delivery"}),
    ("en", "I was charged twice on my last invoice.", {"billing"}),
    ("en", "Way too expensive for what you get, the prices went up again.", {"price"}),
    ("en", "The shop assistant was rude and unfriendly.", {"staff"}),
    ("en", "Waited 40 minutes on hold before anyone answered.", {"waiting", "communication"}),
    ("en", "The blender arrived damaged and stopped working after a week.",
     {"product_quality"}),
    ("en", "Your app keeps crashing when I try to log in.", {"website_app"}),
    ("en", "Still no refund for the jacket I sent back.", {"returns"}),
    # Lithuanian: pristatymas / pristatymo / pristatė, kurjeris / kurjerio
    ("lt", "Pristatymas vėlavo tris dienas, kurjeris neatsakė į skambučius.",
     {"delivery", "waiting", "communication"}),
    ("lt", "Siuntinio pristatymo laikas buvo per ilgas.", {"delivery"}),
    ("lt", "Kurjerio niekas neinformavo, siunta grįžo atgal.", {"delivery", "communication"}),
    ("lt", "Sąskaitoje nuskaičiavo du kartus už tą patį užsakymą.", {"billing"}),
    ("lt", "Kainos per didelės, labai brangu.", {"price"}),
    ("lt", "Darbuotoja buvo nemandagi, aptarnavimas prastas.", {"staff"}),
    ("lt", "Ilgai laukiau eilėje prie kasos.", {"waiting"}),
    ("lt", "Prekės kokybė prasta, po savaitės sugedo.", {"product_quality"}),
    ("lt", "Programėlė neleidžia prisijungti, rodo klaidą.", {"website_app"}),
    ("lt", "Norėjau grąžinti prekę, bet grąžinimas užtruko mėnesį.", {"returns"}),
    # Estonian: tarne / tarnet / tarnega, kuller / kulleri, pakk / paki
    ("et", "Tarne hilines kaks päeva ja kuller ei helistanud.",
     {"delivery", "waiting", "communication"}),
    ("et", "Paki kohaletoimetamine võttis nädal aega, kulleri teenus oli aeglane.",
     {"delivery", "waiting"}),
    ("et", "Tarnega oli probleeme, saadetis jäi kaduma.", {"delivery"}),
    ("et", "Arvel oli vale summa ja makse võeti kaks korda.", {"billing"}),
    ("et", "Liiga kallis, hinnad on tõusnud.", {"price"}),
    ("et", "Teenindaja oli ebaviisakas.", {"staff"}),
    ("et", "Ootasin järjekorras pool tundi.", {"waiting"}),
    ("et", "Toode oli katki ja kvaliteet on halb.", {"product_quality"}),
    ("et", "Rakendus ei lase sisselogida, parool ei tööta.", {"website_app"}),
    ("et", "Tagastus võttis kaua, raha tagasi pole siiani.", {"returns", "waiting"}),
    # Polish: dostawa / dostawy / dostawę, kurier / kuriera, przesyłka / przesyłki
    ("pl", "Dostawa spóźniła się o tydzień, kurier nie zadzwonił.",
     {"delivery", "waiting", "communication"}),
    ("pl", "Czekam na przesyłkę od dwóch tygodni, a dostawy nadal brak.",
     {"delivery", "waiting"}),
    ("pl", "Kuriera nie było, paczka nie dotarła.", {"delivery"}),
    ("pl", "Na fakturze pobrano opłatę dwukrotnie.", {"billing"}),
    ("pl", "Za drogo, ceny są za wysokie.", {"price"}),
    ("pl", "Obsługa w sklepie była niemiła.", {"staff"}),
    ("pl", "Produkt przyszedł uszkodzony, jakość fatalna.", {"product_quality"}),
    ("pl", "Aplikacja wyrzuca błąd przy logowaniu.", {"website_app"}),
    ("pl", "Zwrot towaru był bardzo skomplikowany.", {"returns"}),
    # Russian: доставка / доставки / доставку, курьер / курьера, посылка / посылку
    ("ru", "Доставку ждал две недели, курьер грубил.", {"delivery", "waiting", "staff"}),
    ("ru", "Курьера не было, посылку привезли только через неделю.", {"delivery"}),
    ("ru", "Доставка опоздала, заказ не пришёл вовремя.", {"delivery", "waiting"}),
    ("ru", "С карты списали деньги дважды за одну оплату.", {"billing"}),
    ("ru", "Слишком дорого, цены постоянно растут.", {"price"}),
    ("ru", "Продавец был груб и невежлив.", {"staff"}),
    ("ru", "Долго стоял в очереди на кассе.", {"waiting"}),
    ("ru", "Товар оказался бракованным, качество ужасное.",
     {"product_quality", "complaint"}),
    ("ru", "Приложение выдаёт ошибку при входе в личный кабинет.", {"website_app"}),
    ("ru", "Хочу вернуть товар, но возврат не оформляют.", {"returns"}),
]


@pytest.mark.parametrize(("language", "text", "expected"), CASES)
def test_realistic_comments_get_their_topics(language: str, text: str,
                                             expected: set[str]) -> None:
    found = set(TAGGER.tag(text, language))
    assert expected <= found, f"{text!r}: {sorted(found)}"


def test_praise_has_no_issue_topic() -> None:
    for language, text in [("en", "Great service, thank you!"), ("lt", "Ačiū, viskas puiku."),
                           ("et", "Suur aitäh, kõik oli super."), ("pl", "Wszystko super."),
                           ("ru", "Спасибо, всё отлично!")]:
        assert TAGGER.tag(text, language) == []


def test_unknown_language_tries_every_lexicon() -> None:
    assert "delivery" in TAGGER.tag("Kurjeris vėlavo", None)
    assert "delivery" in TAGGER.tag("Kurjeris vėlavo", "xx")


def test_whole_word_patterns_do_not_match_longer_words() -> None:
    assert "website_app" in TAGGER.tag("The app froze", "en")
    assert "website_app" not in TAGGER.tag("I appreciate the apples", "en")


def test_complaint_wording_is_tagged() -> None:
    assert "complaint" in TAGGER.tag("Worst shop ever, never again!", "en")
    assert "complaint" in TAGGER.tag("Niekada daugiau nepirksiu", "lt")


def test_empty_text_has_no_topics() -> None:
    assert TAGGER.tag(None) == [] and TAGGER.tag("") == []


def test_every_shipped_language_is_loaded() -> None:
    assert TAGGER.languages == ["en", "et", "lt", "pl", "ru"]


def test_an_invalid_lexicon_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "xx.yaml").write_text("language: xx\ntopics: {delivery: [ok], bad: 3}\n")
    with pytest.raises(LexiconError, match=r"xx\.yaml"):
        load_tagger(tmp_path)
    with pytest.raises(LexiconError, match="no lexicon files"):
        load_tagger(tmp_path / "empty")


def test_an_edited_lexicon_is_used(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("language: en\ntopics: {loyalty: [points, 'gold card$']}\n")
    tagger = load_tagger(tmp_path)
    assert tagger.tag("My gold card points vanished", "en") == ["loyalty"]


def _reference_tag(tagger: Any, text: str, language: str) -> list[str]:
    """The plain definition: some pattern's words match consecutive tokens."""
    from cxstream.alerts.comment_tags import tokens_of

    tokens = tokens_of(text)
    chosen = [language, "en"] if language in tagger.lexicons else list(tagger.lexicons)
    return sorted({topic for code in dict.fromkeys(chosen)
                   for topic, patterns in tagger.lexicons.get(code, {}).items()
                   if any(p.matches(tokens) for p in patterns)})


_TAGGER = load_tagger()
_VOCABULARY = sorted({word.rstrip("$") + suffix
                      for topics in _TAGGER.lexicons.values() for patterns in topics.values()
                      for pattern in patterns for word, _ in pattern.words
                      for suffix in ("", "as", "ing")} | {"and", "the", "very", "no"})


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=12),
       st.sampled_from(["en", "lt", "et", "pl", "ru", "fr"]))
def test_compiled_tagging_matches_the_word_by_word_definition(words: list[str],
                                                              language: str) -> None:
    text = " ".join(words)
    assert _TAGGER.tag(text, language) == _reference_tag(_TAGGER, text, language)
