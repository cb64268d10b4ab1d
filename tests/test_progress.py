"""Long work is not silent in a log file: plain progress lines at intervals off a terminal."""

import io

from r1omni.progress import LineProgress, progress_bar


def test_lines_at_intervals_and_at_the_end():
    stream = io.StringIO()
    bar = LineProgress(every=3600, stream=stream)
    task = bar.add_task("eval", total=10, status="")
    for done in range(1, 10):
        bar.update(task, completed=done)
    assert stream.getvalue() == ""  # the interval has not passed
    bar.update(task, completed=10, status="loss 0.5")
    bar.update(task, completed=10)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "eval 10/10 (100%)" in lines[0] and "loss 0.5" in lines[0]
    every = LineProgress(every=0, stream=stream)
    task = every.add_task("train", total=4)
    every.update(task, completed=1)
    assert "train 1/4 (25%)" in stream.getvalue().splitlines()[-1]


def test_not_a_terminal_gets_lines(capsys):
    with progress_bar() as bar:  # pytest captures stdout: not a terminal
        assert isinstance(bar, LineProgress)
        bar.add_task("x", total=1)
        bar.update(0, completed=1)
    assert "x 1/1" in capsys.readouterr().out


def test_training_prints_progress_lines_to_a_log(world_dir, tiny_model, tmp_path, capsys):
    from train_helpers import overrides

    from r1omni.cli import main

    items = overrides(world_dir, tiny_model, tmp_path / "sft", **{"data.train": world_dir / "coldstart.jsonl"})
    assert main(["sft", *items]) == 0
    assert "sft 2/2 (100%)" in capsys.readouterr().out
