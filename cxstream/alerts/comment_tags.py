"""Tag free-text comments with topics, in English, Lithuanian, Estonian, Polish and Russian.

Why by hand: the lexicons are small editable data files (alerts/lexicons) and the matching
rule is one line (a word starts with a stem); stemmers or language models would add large
dependencies or a network service for no gain at this size.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: marks negative wording; not an issue topic of its own
COMPLAINT = "complaint"
_WORD = re.compile(r"\w+(?:[-'\u2019]\w+)*", re.UNICODE)


class LexiconError(ValueError):
    """A lexicon file is invalid; the message names the file and the problem."""


class LexiconFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern=r"^[a-z]{2,3}$")
    topics: dict[str, list[str]] = Field(min_length=1)


@dataclass(frozen=True)
class Pattern:
    words: tuple[tuple[str, bool], ...]  # (text, whole word?)

    def matches(self, tokens: list[str]) -> bool:
        size = len(self.words)
        for start in range(len(tokens) - size + 1):
            if all(_word_matches(tokens[start + i], word, whole)
                   for i, (word, whole) in enumerate(self.words)):
                return True
        return False


    def regex(self) -> str:
        """The same match over tokens joined by single spaces (see TopicTagger)."""
        return " ".join(re.escape(word) + ("(?= |$)" if whole else "[^ ]*")
                        for word, whole in self.words)


def _word_matches(token: str, word: str, whole: bool) -> bool:
    return token == word if whole else token.startswith(word)


def normalise(text: str) -> str:
    """Lower case, composed characters, Cyrillic yo as ye (as Russian writers do)."""
    text = unicodedata.normalize("NFC", text).casefold()
    return text.replace("\u0451", "\u0435").replace("\u2019", "'")


def tokens_of(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def compile_pattern(raw: str) -> Pattern:
    words = []
    for word in raw.split():
        whole = word.endswith("$")
        text = normalise(word.rstrip("$"))
        if not text:
            raise LexiconError(f"empty word in pattern {raw!r}")
        words.append((text, whole))
    return Pattern(tuple(words))


class TopicTagger:
    """Finds the topics of a text with the lexicon of its language (and English)."""

    def __init__(self, lexicons: dict[str, dict[str, list[Pattern]]]) -> None:
        self.lexicons = lexicons
        # one regular expression per language and topic, over the space-joined tokens:
        # the same matches as Pattern.matches (a property test checks it), in one pass
        self.compiled = {
            code: {topic: re.compile("(?:^| )(?:" + "|".join(p.regex() for p in patterns)
                                     + ")")
                   for topic, patterns in topics.items()}
            for code, topics in lexicons.items()}

    @property
    def languages(self) -> list[str]:
        return sorted(self.lexicons)

    @property
    def topics(self) -> list[str]:
        """Every topic of every lexicon, once."""
        return sorted({topic for topics in self.lexicons.values() for topic in topics})

    def tag(self, text: str | None, language: str | None = None) -> list[str]:
        """Sorted topics found in ``text``; every lexicon is tried when the language is
        unknown or has none."""
        if not text:
            return []
        joined = " ".join(tokens_of(text))
        primary = (language or "").split("-")[0].lower()
        chosen = [primary, "en"] if primary in self.lexicons else list(self.lexicons)
        found = set()
        for code in dict.fromkeys(chosen):
            for topic, pattern in self.compiled.get(code, {}).items():
                if topic not in found and pattern.search(joined):
                    found.add(topic)
        return sorted(found)


def load_tagger(directory: Path | None = None) -> TopicTagger:
    """Read every ``<language>.yaml`` in ``directory`` (default: the shipped lexicons)."""
    if directory is None:
        with resources.as_file(resources.files("cxstream.alerts") / "lexicons") as shipped:
            return _load(shipped)
    return _load(directory)


def _load(directory: Path) -> TopicTagger:
    lexicons: dict[str, dict[str, list[Pattern]]] = {}
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise LexiconError(f"no lexicon files (*.yaml) in {directory}")
    for path in files:
        try:
            parsed = LexiconFile.model_validate(yaml.safe_load(path.read_text("utf-8")))
        except (yaml.YAMLError, ValidationError) as exc:
            raise LexiconError(f"{path}: {exc}") from exc
        lexicons[parsed.language] = {
            topic: [compile_pattern(raw) for raw in patterns]
            for topic, patterns in parsed.topics.items()
        }
    return TopicTagger(lexicons)
