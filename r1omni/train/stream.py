"""Training examples from manifest rows: decoded media, the chat prompt, the label and texts.

The order is a seeded permutation per epoch, so a run's position is two integers (epoch,
index) and resuming needs nothing else. Rows whose media cannot be read are reported and
skipped; the run goes on.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from r1omni.data.manifest import ClipRow
from r1omni.errors import R1OmniError
from r1omni.labels import ALL_LABELS, vocabulary
from r1omni.models import ClipMedia, OmniPolicy
from r1omni.models.standardize import statistics_group
from r1omni.prompts import GIVEN, PROMPTS, build_messages, lists_labels

log = logging.getLogger(__name__)


@dataclass
class Example:
    row: ClipRow
    media: ClipMedia
    messages: list[dict]


def make_example(row: ClipRow, policy: OmniPolicy, modalities, prompt: str = "r1omni",
                 labels: str = "dfew", statistics_by: str | None = None) -> Example:
    """Decode a row's media and build its prompt for the modalities it actually has; its
    features are standardised by its `statistics_by` group's statistics (`statistics_group`)."""
    media = policy.read_clip(row.video, row.audio, modalities)
    media.statistics = statistics_group(row, statistics_by)
    present = media.present()
    if not present:
        raise R1OmniError(f"{row.id}: none of the modalities {list(modalities)} could be read")
    options = vocabulary(labels) if lists_labels(prompt) else None
    return Example(row, media, build_messages(prompt, present, labels=options))


def texts_for_tokenizer(rows: list[ClipRow]) -> list[str]:
    """What a model trained on `rows` reads and writes: the prompts, every label, and the rows'
    captions and reasoning targets (a fresh preset that trains its tokenizer learns them)."""
    texts = [prompt.question for prompt in PROMPTS.values()] + list(GIVEN.values()) + list(ALL_LABELS)
    for row in rows:
        texts += [text for text in (row.caption, row.rationale) if text]
        texts.append(f"<think>{row.rationale or ''}</think>\n<answer>{row.label}</answer>")
    return texts


def media_bytes(example: Example) -> int:
    """Memory held by an example's decoded frames and audio."""
    return sum(a.nbytes for a in (example.media.frames, example.media.audio) if a is not None)


@dataclass
class Position:
    epoch: int = 0
    index: int = 0


class RowStream:
    """Endless batches of examples over `rows`, reshuffled each epoch from `seed`."""

    def __init__(self, rows: list[ClipRow], policy: OmniPolicy, modalities, prompt: str, labels: str,
                 seed: int, position: Position | None = None, cache_mb: float = 0, statistics_by: str | None = None):
        if not rows:
            raise R1OmniError("no training rows")
        self.rows, self.policy, self.modalities = rows, policy, modalities
        self.prompt, self.labels, self.seed = prompt, labels, seed
        self.statistics_by = statistics_by
        self.position = position or Position()
        self.failures: dict[str, str] = {}
        # Decoded examples kept for later epochs, least recently used dropped past `cache_mb`.
        self.cache: OrderedDict[str, Example] = OrderedDict()
        self.cache_bytes, self.cache_limit = 0, int(cache_mb * 2**20)

    def example(self, row: ClipRow) -> Example:
        if row.id in self.cache:
            self.cache.move_to_end(row.id)
            return self.cache[row.id]
        example = make_example(row, self.policy, self.modalities, self.prompt, self.labels, self.statistics_by)
        size = media_bytes(example)
        if size <= self.cache_limit:
            self.cache[row.id] = example
            self.cache_bytes += size
            while self.cache_bytes > self.cache_limit:
                _, dropped = self.cache.popitem(last=False)
                self.cache_bytes -= media_bytes(dropped)
        return example

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def next_rows(self, count: int) -> list[ClipRow]:
        out = []
        while len(out) < count:
            order = self._order(self.position.epoch)
            take = order[self.position.index : self.position.index + count - len(out)]
            out += [self.rows[i] for i in take]
            self.position.index += len(take)
            if self.position.index >= len(self.rows):
                self.position = Position(self.position.epoch + 1, 0)
        return out

    def next_examples(self, count: int) -> list[Example]:
        """`count` examples; a row that fails to decode is logged, remembered and replaced."""
        examples = []
        while len(examples) < count:
            for row in self.next_rows(count - len(examples)):
                if row.id in self.failures:
                    continue
                try:
                    examples.append(self.example(row))
                except R1OmniError as err:
                    self.failures[row.id] = str(err)
                    log.warning("skipping %s: %s", row.id, err)
            if len(self.failures) == len(self.rows):
                raise R1OmniError("no row of the manifest could be decoded")
        return examples

    def epoch_fraction(self) -> float:
        return self.position.epoch + self.position.index / len(self.rows)

    def __iter__(self) -> Iterator[Example]:
        while True:
            yield from self.next_examples(1)
