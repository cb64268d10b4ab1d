"""What a reasoning text claims about a clip, and which of its claims the clip's measurement bears out.

Two vocabularies of claims, one per kind of measurement:
- **cues** (the synthetic world): describable face and voice cues ("furrowed brows", "a loud
  voice"), measured as each clip's recorded ``cues.face_cues`` / ``cues.voice_cues``;
- **levels** (real speech): pitch, loudness, pitch variation and tempo said as one of three
  levels ("high-pitched", "a slow tempo"), measured by openSMILE's eGeMAPS against a corpus's
  terciles (``meta.acoustics``, written by ``r1omni data describe-voice``).

A claim is read with the modality its sentence speaks of ("Acoustically, the speech has pressed
lips" says a face cue of the voice: false whatever the face shows). A negated mention ("no
smile") claims nothing, unless it denies a cue that is there. Each distinct claim counts once.
The faithfulness reward (`r1omni.rewards.faithfulness_reward`) and the evaluation's faithfulness
figures both read this module, so training and scoring judge a sentence the same way.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

FACE, VOICE = "face", "voice"
SHOWN = {"video": FACE, "audio": VOICE}  # what each prompt modality lets a model perceive

# Each cue concept's modality and the pattern that recognises it in free text (the world's
# phrases and common synonyms), most specific first: a matched span is blanked before the next
# pattern looks, so "inner brows drawn up" is not also a brow raise.
CUE_PATTERNS: dict[str, tuple[str, str]] = {
    "inner_brow_raise": (FACE, r"inner (ends of the )?(eye)?brows (drawn up|lifted|raised)|brows slanting up(ward)?"
                               r"( in the middle)?|inner brows? (raise|raised|lifted|drawn up)"),
    "brow_raise": (FACE, r"(raised|lifted|arched|raising) (eye)?brows|(eye)?brows (are |were )?(lifted( high)?"
                         r"|raised|pulled up|arched|shoot up|go up)|eyebrows up"),
    "brow_lower": (FACE, r"furrow(ed|ing)? (brows?|forehead)|(eye)?brows? (are |were )?(drawn together|knitted"
                         r"|lowered|furrowed)|lowered (eye)?brows|\bfrown(ing|s)?\b"),
    "eyes_wide": (FACE, r"(wide[- ]open|widened|staring|wide) eyes|eyes (are |were )?(opened wide|wide open|wide"
                        r"|widened)|upper (eye)?lids (are )?raised|raised upper (eye)?lids"),
    "cheek_raise": (FACE, r"(raised|lifted) cheeks|cheeks (are )?(pushed up|raised|lifted)|crinkles around the eyes"
                          r"|crow'?s[- ]feet"),
    "nose_wrinkle": (FACE, r"(wrinkled|scrunched|crinkled) nose|nose (is )?(wrinkled|scrunched)"
                           r"|wrinkles across the nose|wrinkl(es|ing) (the|his|her|their) nose"),
    "smile": (FACE, r"\bsmil(e|es|ed|ing)\b|lip corners (pulled|turned|drawn) up|upturned (mouth|lip) corners"
                    r"|\bgrin(s|ning)?\b"),
    "mouth_down": (FACE, r"downturned (lip|mouth) corners|(mouth|lip) corners (pulled|turned|drawn) down"
                         r"|drooping mouth|mouth turned down"),
    "lip_stretch": (FACE, r"lips (stretched|pulled) (sideways|wide|back)|stretched (mouth|lips)"),
    "lip_press": (FACE, r"(pressed|tight|tightened|compressed) lips|lips (are )?(pressed|tightened|compressed)"),
    "jaw_drop": (FACE, r"open mouth|mouth (falling |hanging |drops |dropping |is )?open|dropped jaw"
                       r"|jaw (drops|dropped)|\bgaping\b"),
    "still_face": (FACE, r"relaxed face|expressionless|little facial movement|blank (face|expression)"
                         r"|neutral (face|expression)"),
    "pitch_high": (VOICE, r"high[- ]pitched|(raised|elevated|high) pitch|voice (is )?higher|higher than usual"),
    "pitch_low": (VOICE, r"low[- ]pitched|(lowered|low) pitch|deep,? dropped voice|voice (is )?lower"),
    "pitch_varied": (VOICE, r"lively intonation|wide pitch (swings|range)|animated (melody|intonation)"
                            r"|varied (pitch|intonation)"),
    "monotone": (VOICE, r"flat (intonation|voice|melody)|monoton(e|ous)|little pitch movement"),
    "rising": (VOICE, r"rising (intonation|pitch)|pitch rising|question-like rise|rises at the end"),
    "falling": (VOICE, r"falling (intonation|pitch)|pitch (dropping|falling)|sinking melody"),
    "loud": (VOICE, r"\bloud\b|raised volume|forceful|\bshout(s|ing)?\b|\byell(s|ing)?\b"),
    "soft": (VOICE, r"quiet (voice|speech)|low volume|subdued|soft(ly)?[- ]spoken|\bsoft voice|whisper"),
    "fast": (VOICE, r"fast (speech|pace|speaking)|rapid (speaking rate|speech)|hurried|speaks quickly"),
    "slow": (VOICE, r"slow (speech|pace)|sluggish|drawn[- ]out|speaks slowly"),
    "pauses": (VOICE, r"(long|hesitant|frequent) pauses|halting|hesitat(es|ing|ion)"),
    "tremor": (VOICE, r"trembl(ing|es|y)|shaky|quaver(ing|s|y)?|wavering voice"),
    "breathy": (VOICE, r"breathy|airy,? weak voice|\bsigh(ing|s)?\b"),
    "tense": (VOICE, r"tense voice|harsh|pressed voice|strained"),
    "even_voice": (VOICE, r"even voice|ordinary speaking voice|steady,? unremarkable voice|normal (tone|voice)"),
}

# The words for the lower, middle and upper third of each measured voice attribute (the
# rationales `r1omni data describe-voice` writes use exactly these).
LEVEL_WORDS: dict[str, tuple[str, str, str]] = {
    "pitch": ("low-pitched", "mid-pitched", "high-pitched"),
    "loudness": ("quiet", "moderately loud", "loud"),
    "variation": ("flat", "moderately varied", "widely varying"),
    "tempo": ("slow", "moderate", "fast"),
}
# How each level is recognised; "moderate" alone is a tempo only when the tempo is named.
_LEVEL_PATTERNS: dict[str, tuple[str, str, str]] = {
    "pitch": (r"\blow[- ]pitched\b", r"\bmid[- ]pitched\b", r"\bhigh[- ]pitched\b"),
    "loudness": (r"\bquiet\b", r"\bmoderately loud\b", r"\bloud\b"),
    "variation": (r"\bflat\b", r"\bmoderately varied\b", r"\bwidely varying\b"),
    "tempo": (r"\bslow\b", r"\bmoderate (?:tempo|pace|speaking rate)\b", r"\bfast\b"),
}

# Words that say which modality a sentence speaks of. Claims are blanked before these are
# looked for, so the "voice" of "a loud voice" does not count.
_MODALITY_WORDS = {
    FACE: re.compile(r"\b(face|faces|facial|expression|expressions|visually|visual|on screen|looking|seen)\b",
                     re.IGNORECASE),
    VOICE: re.compile(r"\b(voice|voices|vocal|audio|sound|sounds|soundtrack|speech|acoustic|acoustically|"
                      r"listening|recording|heard|hears|speaks|talks|tone|intonation)\b", re.IGNORECASE),
}
_SENTENCE_END = re.compile(r"[.!?;\n]")
# A negation word up to three words before a mention, within the same clause.
_NEGATION = re.compile(r"\b(no|not|without|never|neither|nor|lacks?|lacking|absence of|isn't|aren't|doesn't)"
                       r"\b([^\w;:.,!?]+\w+){0,3}[^\w;:.,!?]*$", re.IGNORECASE)
_CUES = {name: (modality, re.compile(pattern, re.IGNORECASE)) for name, (modality, pattern) in CUE_PATTERNS.items()}
_LEVELS = {name: tuple(re.compile(p, re.IGNORECASE) for p in patterns) for name, patterns in _LEVEL_PATTERNS.items()}


@dataclass(frozen=True)
class Claim:
    """One thing a reasoning text says of the clip."""

    name: str  # a cue concept ("brow_lower") or a measured attribute ("pitch")
    modality: str  # the modality the cue belongs to: face | voice
    said_of: str  # the modality its sentence speaks of (its own when the sentence names none)
    negated: bool
    level: int | None = None  # 0, 1 or 2 for a level claim
    start: int = 0  # where the mention is in the text
    end: int = 0

    @property
    def key(self) -> tuple:
        """What makes two mentions the same claim: repeating one adds nothing."""
        return self.name, self.level, self.said_of, self.negated

    @property
    def words(self) -> str:
        """How the claim reads in reports: a level's words ("high-pitched") or the cue's concept."""
        return LEVEL_WORDS[self.name][self.level] if self.level is not None else self.name


@dataclass
class Measurement:
    """What was measured of a clip, for the modalities the model was given.

    `cues`: the describable cues per modality (the synthetic world). `levels`: the voice's level
    per attribute (real speech), with the measured `values` behind them and the `bounds` that
    split a corpus into thirds."""

    shown: frozenset[str]  # face and/or voice: what the model could perceive
    cues: dict[str, frozenset[str]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "levels" if self.levels else "cues"

    def truth_count(self) -> int:
        """How many true claims there are to make: every true cue, or one level per attribute."""
        return len(self.levels) if self.levels else sum(len(cues) for cues in self.cues.values())

    def to_json(self) -> dict:
        data: dict = {"shown": sorted(self.shown)}
        if self.cues:
            data["cues"] = {modality: sorted(cues) for modality, cues in self.cues.items()}
        if self.levels:
            data.update(levels=dict(self.levels), values=dict(self.values),
                        bounds={k: list(v) for k, v in self.bounds.items()})
        return data

    @classmethod
    def from_json(cls, data: dict) -> Measurement:
        return cls(frozenset(data.get("shown", ())), {m: frozenset(c) for m, c in data.get("cues", {}).items()},
                   dict(data.get("levels", {})), dict(data.get("values", {})),
                   {k: tuple(v) for k, v in data.get("bounds", {}).items()})


def measurement_of(cues: dict | None = None, meta: dict | None = None,
                   modalities: Iterable[str] = ("video", "audio")) -> Measurement | None:
    """A row's measurement as the model given `modalities` could check it: the synthetic
    world's describable cues (``cues.face_cues`` / ``cues.voice_cues``), else measured voice
    levels (``meta.acoustics``: ``{attribute: {"value", "level", "bounds"}}``); None without either,
    or when the model was shown none of what was measured."""
    shown = frozenset(SHOWN[m] for m in modalities if m in SHOWN)
    if isinstance(cues, dict) and ("face_cues" in cues or "voice_cues" in cues):
        found = {modality: frozenset(cues.get(f"{modality}_cues") or ()) for modality in (FACE, VOICE)
                 if modality in shown and f"{modality}_cues" in cues}
        return Measurement(shown, cues=found) if found else None
    acoustics = (meta or {}).get("acoustics") if isinstance(meta, dict) else None
    if isinstance(acoustics, dict) and VOICE in shown:
        measured = {name: value for name, value in acoustics.items()
                    if name in LEVEL_WORDS and isinstance(value, dict) and value.get("level") in (0, 1, 2)}
        if measured:
            return Measurement(shown, levels={n: int(v["level"]) for n, v in measured.items()},
                               values={n: float(v["value"]) for n, v in measured.items() if "value" in v},
                               bounds={n: tuple(v["bounds"]) for n, v in measured.items() if "bounds" in v})
    return None


# ----------------------------------------------------------------------------- reading claims


def _mentions(text: str, patterns: list[tuple[str, int | None, re.Pattern]]) -> list[tuple[str, int | None, int, int]]:
    """(name, level, start, end) of every match, patterns in order, each match blanked before
    the next pattern looks (with a word-like filler, so a later negation scope still counts it)."""
    found = []
    remaining = text
    for name, level, pattern in patterns:
        spans = [match.span() for match in pattern.finditer(remaining)]
        if not spans:
            continue
        found += [(name, level, start, end) for start, end in spans]
        pieces, at = [], 0
        for start, end in spans:
            pieces += [remaining[at:start], "_" * (end - start)]
            at = end
        remaining = "".join(pieces) + remaining[at:]
    return found


class _Sentences:
    """Where a text's sentences start and which modality words it has, found once, so that each
    mention's modality is a lookup (a long text with many mentions stays linear)."""

    def __init__(self, blanked: str):
        self.starts = [0] + [m.end() for m in _SENTENCE_END.finditer(blanked)]
        words = sorted((m.start(), modality) for modality, pattern in _MODALITY_WORDS.items()
                       for m in pattern.finditer(blanked))
        self.word_at, self.word_modality = [w[0] for w in words], [w[1] for w in words]

    def said_of(self, start: int, own: str) -> str:
        """The modality the sentence names before the mention at `start` (its last modality word
        there), else the mention's own. Words after a mention are not read: in "the smile does
        not match the voice" the voice is what the smile is compared with."""
        sentence = self.starts[bisect.bisect_right(self.starts, start) - 1]
        last = bisect.bisect_left(self.word_at, start) - 1
        return self.word_modality[last] if last >= 0 and self.word_at[last] >= sentence else own


def read_claims(text: str, kind: str = "cues") -> list[Claim]:
    """The claims of `text`, in the order they are written. `kind` ``cues`` reads cue concepts;
    ``levels`` reads voice levels, and face cues too (what a model that heard only a voice may
    not claim)."""
    if kind not in ("cues", "levels"):
        raise ValueError(f"kind must be cues or levels, got {kind!r}")
    text = text or ""
    patterns = [(f"{name}", level, pattern) for name, levels in _LEVELS.items()
                for level, pattern in sorted(enumerate(levels), key=lambda p: -len(p[1].pattern))] \
        if kind == "levels" else []
    cue_patterns = [(name, None, pattern) for name, (modality, pattern) in _CUES.items()
                    if kind == "cues" or modality == FACE]
    mentions = _mentions(text, patterns + cue_patterns)
    blanked = list(text)
    for _, _, start, end in mentions:
        blanked[start:end] = "_" * (end - start)
    blanked = "".join(blanked)
    sentences = _Sentences(blanked)
    claims = []
    for name, level, start, end in sorted(mentions, key=lambda m: m[2]):
        modality = VOICE if level is not None else _CUES[name][0]
        negated = bool(_NEGATION.search(blanked[max(0, start - 40) : start]))
        claims.append(Claim(name, modality, sentences.said_of(start, modality), negated, level, start, end))
    return claims


# ----------------------------------------------------------------------------- checking them


@dataclass(frozen=True)
class Verdict:
    """Whether one claim holds against the measurement: `holds` True or False, or None when it
    is not scored (a denial of a cue that is absent: true, but free to make)."""

    claim: Claim
    holds: bool | None
    why: str  # true | absent | wrong modality | not shown | denies a present cue | measured <level words>


def judge(claim: Claim, measured: Measurement) -> Verdict:
    """One claim against what was measured of its clip."""
    if claim.modality not in measured.shown:
        return Verdict(claim, False, "not shown")
    if claim.said_of != claim.modality:
        return Verdict(claim, False, "wrong modality")
    if claim.level is not None:
        actual = measured.levels.get(claim.name)
        if actual is None:
            return Verdict(claim, None, "not measured")
        if claim.negated:
            return Verdict(claim, False, "denies a present level") if actual == claim.level \
                else Verdict(claim, None, "denies an absent level")
        return Verdict(claim, actual == claim.level, "true" if actual == claim.level
                       else f"measured {LEVEL_WORDS[claim.name][actual]}")
    if measured.kind == "levels":  # a face cue where only the voice was measured and shown is caught above
        return Verdict(claim, None, "not measured")
    present = claim.name in measured.cues.get(claim.modality, ())
    if claim.negated:
        if present:
            return Verdict(claim, False, "denies a present cue")
        return Verdict(claim, None, "denies an absent cue")
    return Verdict(claim, present, "true" if present else "absent")


def check_claims(text: str, measured: Measurement) -> list[Verdict]:
    """Each distinct claim of `text` judged against `measured`, in the order first written."""
    seen, verdicts = set(), []
    for claim in read_claims(text, measured.kind):
        if claim.key not in seen:
            seen.add(claim.key)
            verdicts.append(judge(claim, measured))
    return verdicts


def faithfulness(verdicts: list[Verdict], measured: Measurement, false_cost: float = 1.0) -> float:
    """(true claims − `false_cost` × false claims) / the number of true claims there were to make,
    clipped to [−1, 1]: 1 when every measured cue (or level) is stated and nothing false; 0 for
    no claim; below 0 when false claims outweigh true ones."""
    true = sum(v.holds is True for v in verdicts)
    false = sum(v.holds is False for v in verdicts)
    return max(-1.0, min(1.0, (true - false_cost * false) / max(measured.truth_count(), 1)))


def claim_report(text: str, measured: Measurement) -> dict:
    """One reasoning text against its clip: precision (true claims among those judged; None
    without any), recall (true claims among those there were to make), F1, the claims that hold
    (`true`), the false ones with why (`false`), and what was measured but not said (`missed`)."""
    verdicts = check_claims(text, measured)
    true = [v.claim.words for v in verdicts if v.holds is True]
    false = {v.claim.words: v.why for v in verdicts if v.holds is False}
    judged = len(true) + len(false)
    precision = len(true) / judged if judged else None
    recall = len(true) / max(measured.truth_count(), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    if measured.levels:
        stated = {v.claim.name for v in verdicts if v.holds is True}
        missed = [LEVEL_WORDS[name][level] for name, level in measured.levels.items() if name not in stated]
    else:
        said = {(v.claim.modality, v.claim.name) for v in verdicts if v.holds is True}
        missed = sorted(name for modality, names in measured.cues.items() for name in names
                        if (modality, name) not in said)
    return {"precision": precision, "recall": recall, "f1": f1, "true": true, "false": false, "missed": missed,
            "verdicts": verdicts}
