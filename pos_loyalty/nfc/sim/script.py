"""Tap sessions: a scripted sequence of tags presented to a reader, in TOML or JSON.

TOML::

    repeat = 1                 # optional: play the whole list this many times
    [[tap]]
    tag = "member"             # member | product | foreign | blank | unformatted | legacy
    card = "DEMO-0001"         #   | copied (a member record moved onto another UID)
                               #   | phone (a phone emulating a member card, Type 4)
                               #   | sun-product | sun-member (NTAG 424 DNA, live SUN)
    hold_ms = 300              # time in the field (default 300)
    gap_ms = 500               # empty field afterwards (default 500)
    [[tap]]
    tag = "product"
    product = "4006381333931"
    uid = "04A1B2C3D4E5F6"     # optional fixed UID; model = "NTAG215" optional

JSON is the same shape: ``{"repeat": 1, "tap": [{"tag": "member", "card": "DEMO-0001"}]}``.

Taps naming the same tag (kind, card or product, uid, model) reuse one emulated tag, so "the
same card tapped again" keeps its UID. Parsing is pure (:func:`parse_script`); playing it
(:func:`play`) drives a :class:`~pos_loyalty.nfc.sim.emulator.TagEmulator` in real time.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import Issuer, member_card_ndef, valid_card_id, valid_product
from pos_loyalty.nfc.demo_keys import (
    DEMO_ISSUER,
    DEMO_SUN_FILE_KEY,
    DEMO_SUN_MEMBER_URL,
    DEMO_SUN_META_KEY,
    DEMO_SUN_PRODUCT_URL,
)
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.ntag import MODELS, Ntag21x, random_nxp_uid
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, PhoneCard, random_phone_uid
from pos_loyalty.nfc.sun import pack_file_data

KINDS = ("member", "product", "foreign", "blank", "unformatted", "legacy", "copied",
         "phone", "sun-product", "sun-member")
_KEYS = {"tag", "card", "product", "uid", "model", "hold_ms", "gap_ms"}
_NOT_NTAG = ("legacy", "phone", "sun-product", "sun-member")
MAX_TAPS = 100_000
MAX_MS = 3_600_000


@dataclass(frozen=True)
class TagSpec:
    """Which tag to present; equal specs are the same physical tag."""

    kind: str
    card: str | None = None
    product: str | None = None
    uid: bytes | None = None
    model: str | None = None


@dataclass(frozen=True)
class Tap:
    """One step: ``tag`` in the field for ``hold_ms``, then ``gap_ms`` of empty field."""

    tag: TagSpec
    hold_ms: int = 300
    gap_ms: int = 500


@dataclass(frozen=True)
class TapScript:
    taps: tuple[Tap, ...]
    repeat: int = 1
    source: str = "<script>"


def _err(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(message, path=source, key=key)


def _int_ms(step: Mapping[str, Any], key: str, default: int, source: str, where: str) -> int:
    value = step.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MS:
        raise _err(source, f"{where}.{key}", f"must be whole milliseconds 0..{MAX_MS}")
    return value


def parse_tap(step: Any, source: str, where: str) -> Tap:
    """One ``[[tap]]`` table into a Tap; ConfigError naming the key when it is wrong."""
    if not isinstance(step, dict):
        raise _err(source, where, "each tap must be a table/object")
    unknown = sorted(set(step) - _KEYS)
    if unknown:
        raise _err(source, f"{where}.{unknown[0]}", f"unknown key; known: {sorted(_KEYS)}")
    kind = step.get("tag")
    if kind not in KINDS:
        raise _err(source, f"{where}.tag", f"must be one of {', '.join(KINDS)}")
    card = step.get("card")
    product = step.get("product")
    if kind in ("member", "copied", "phone", "sun-member"):
        if not isinstance(card, str) or not valid_card_id(card):
            raise _err(source, f"{where}.card", "a card number (1-32 of A-Z a-z 0-9 - _)")
    elif card is not None:
        raise _err(source, f"{where}.card", "only member-card taps take a card")
    if kind in ("product", "sun-product"):
        if not isinstance(product, str) or not valid_product(product):
            raise _err(source, f"{where}.product", "a product code (1-32 of A-Z a-z 0-9 . - _)")
    elif product is not None:
        raise _err(source, f"{where}.product", "only product taps take a product")
    uid: bytes | None = None
    if "uid" in step:
        try:
            uid = bytes.fromhex(str(step["uid"]))
        except ValueError:
            uid = b""
        want = (4, 7) if kind in ("legacy", "phone") else (7,)
        if len(uid) not in want:
            raise _err(source, f"{where}.uid", f"a {' or '.join(map(str, want))}-byte hex UID")
    model = step.get("model")
    if model is not None and (kind in _NOT_NTAG or model not in MODELS):
        raise _err(source, f"{where}.model",
                   f"one of {', '.join(MODELS)} (NTAG21x kinds only)")
    return Tap(TagSpec(kind, card, product, uid, model),
               _int_ms(step, "hold_ms", 300, source, where),
               _int_ms(step, "gap_ms", 500, source, where))


def parse_script(doc: Any, source: str = "<script>") -> TapScript:
    """A decoded TOML/JSON document into a TapScript (pure)."""
    if not isinstance(doc, dict):
        raise _err(source, "", "a tap script is a table with a 'tap' list")
    unknown = sorted(set(doc) - {"tap", "repeat"})
    if unknown:
        raise _err(source, unknown[0], "unknown key; known: repeat, tap")
    steps = doc.get("tap")
    if not isinstance(steps, list) or not steps:
        raise _err(source, "tap", "needs at least one [[tap]] entry")
    repeat = doc.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_TAPS:
        raise _err(source, "repeat", f"must be a whole number 1..{MAX_TAPS}")
    if len(steps) * repeat > MAX_TAPS:
        raise _err(source, "tap", f"more than {MAX_TAPS} taps in all")
    taps = tuple(parse_tap(s, source, f"tap[{i + 1}]") for i, s in enumerate(steps))
    return TapScript(taps, repeat, source)


def load_script(path: str | Path) -> TapScript:
    """Read a TOML (``.toml``) or JSON (anything else) tap script."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read tap script: {exc}", path=str(p)) from exc
    try:
        if p.suffix.lower() == ".toml":
            doc: Any = tomllib.loads(text)
        else:
            doc = json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(p)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", path=str(p), line=exc.lineno) from exc
    return parse_script(doc, str(p))


@dataclass
class TagFactory:
    """Builds emulated tags from specs, one tag per distinct spec."""

    issuer: Issuer = DEMO_ISSUER
    _made: dict[TagSpec, EmulatedTag] = field(default_factory=dict)

    def __call__(self, spec: TagSpec) -> EmulatedTag:
        tag = self._made.get(spec)
        if tag is None:
            tag = self._build(spec)
            self._made[spec] = tag
        return tag

    def _build(self, spec: TagSpec) -> EmulatedTag:
        model = spec.model
        if spec.kind == "member":
            assert spec.card is not None
            return cards.member_card(spec.card, issuer=self.issuer, model=model or "NTAG213",
                                     uid=spec.uid)
        if spec.kind == "copied":
            assert spec.card is not None
            original = self(TagSpec("member", spec.card, model=model))
            assert isinstance(original, Ntag21x)
            return cards.copied_card(original, uid=spec.uid)
        if spec.kind == "product":
            assert spec.product is not None
            return cards.product_tag(spec.product, issuer=self.issuer,
                                     model=model or "NTAG215", uid=spec.uid)
        if spec.kind == "phone":
            assert spec.card is not None
            uid = spec.uid or random_phone_uid()
            return PhoneCard(member_card_ndef(spec.card, uid, self.issuer), uid=uid)
        if spec.kind in ("sun-product", "sun-member"):
            member = spec.kind == "sun-member"
            fields = {"card": spec.card or ""} if member else {"sku": spec.product or ""}
            return Ntag424Dna(DEMO_SUN_MEMBER_URL if member else DEMO_SUN_PRODUCT_URL,
                              DEMO_SUN_META_KEY, DEMO_SUN_FILE_KEY,
                              uid=spec.uid or random_nxp_uid(),
                              file_data=pack_file_data(fields))
        if spec.kind == "foreign":
            return cards.foreign_tag(uid=spec.uid)
        if spec.kind == "blank":
            return cards.blank_tag(model=model or "NTAG213", uid=spec.uid)
        if spec.kind == "unformatted":
            return cards.unformatted_tag(model=model or "NTAG213", uid=spec.uid)
        return cards.legacy_card(uid=spec.uid)


def play(
    emulator: TagEmulator, script: TapScript, stop: threading.Event, *,
    factory: TagFactory | None = None,
    on_tap: Callable[[int, Tap, EmulatedTag], None] | None = None,
) -> int:
    """Present each tap in turn in real time; returns the number of taps played."""
    make = factory or TagFactory()
    played = 0
    for _ in range(script.repeat):
        for tap in script.taps:
            if stop.is_set():
                return played
            tag = make(tap.tag)
            emulator.present(tag)
            if on_tap is not None:
                on_tap(played, tap, tag)
            stop.wait(tap.hold_ms / 1000)
            emulator.remove()
            played += 1
            stop.wait(tap.gap_ms / 1000)
    return played
