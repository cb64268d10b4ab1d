"""Rows that carry a face image only, a voice only, or both, in one batch: the prompt says what the
model is given, and the batch gives the same loss, gradients and greedy completions as its rows
one by one (the padding between prompts of different lengths changes nothing)."""

import numpy as np
import pytest
import torch
from PIL import Image

from r1omni.data.manifest import ClipRow
from r1omni.data.synth import SynthWorld, WorldConfig
from r1omni.media import write_audio, write_video
from r1omni.prompts import GIVEN
from r1omni.train.sft import target_text
from r1omni.train.stream import make_example

WORLD = SynthWorld(WorldConfig(seed=3, sizes={"test": 2}))


@pytest.fixture(scope="module")
def mixed_rows(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    face, talk = WORLD.sample("test", 0), WORLD.sample("test", 1)
    Image.fromarray(face.frames[len(face.frames) // 2]).save(root / "face.png")
    write_audio(root / "voice.wav", face.audio)
    write_video(root / "talk.mp4", talk.frames, fps=25, audio=talk.audio)
    return [ClipRow("face", "happy", "t", video=str(root / "face.png")),
            ClipRow("voice", "sad", "t", audio=str(root / "voice.wav")),
            ClipRow("talk", "angry", "t", video=str(root / "talk.mp4"), audio=str(root / "talk.mp4"))]


@pytest.fixture(params=["nano", "composed"])
def policy(request, nano_policy, composed_policy):
    return nano_policy if request.param == "nano" else composed_policy


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def sft_loss_and_grads(policy, examples, targets, total_tokens):
    """The SFT loss (token mean over `total_tokens`) of `examples` as one batch, and its gradients."""
    policy.zero_grad()
    prompts = [policy.prompt(e.messages, e.media) for e in examples]
    logprobs, mask = policy.completion_logprobs(prompts, targets)
    loss = -(logprobs * mask).sum() / total_tokens
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}


def test_a_mixed_batch_equals_its_rows_one_by_one(policy, mixed_rows):
    examples = [make_example(row, policy, ("video", "audio"), "mixed", "dfew") for row in mixed_rows]
    assert [e.media.present() for e in examples] == [["video"], ["audio"], ["video", "audio"]]
    for example in examples:
        assert GIVEN[tuple(example.media.present())] in example.messages[-1]["content"]
    targets = [policy.tokenizer(target_text(e.row, "label"), add_special_tokens=False)["input_ids"] for e in examples]
    total = sum(len(t) for t in targets)

    policy.train()
    batch_loss, batch_grads = sft_loss_and_grads(policy, examples, targets, total)
    alone = [sft_loss_and_grads(policy, [e], [t], total) for e, t in zip(examples, targets)]
    policy.eval()
    assert abs(float(batch_loss) - sum(float(loss) for loss, _ in alone)) < 1e-5 * abs(float(batch_loss))
    assert len(batch_grads) > 10 and any("projectors" in name for name in batch_grads)
    for name, grad in batch_grads.items():
        summed = sum(grads[name] for _, grads in alone if name in grads)
        assert relative(summed, grad) < 1e-4, name

    with torch.no_grad():
        prompts = [policy.prompt(e.messages, e.media) for e in examples]
        together = policy.generate(prompts, 1, temperature=0.0, max_new_tokens=12, seed=0)
        one_by_one = [policy.generate([p], 1, temperature=0.0, max_new_tokens=12, seed=0)[0] for p in prompts]
    assert [g[0].ids for g in together] == [g[0].ids for g in one_by_one]
    assert np.mean([len(g[0].ids) for g in together]) > 0
