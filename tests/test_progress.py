"""The progress display of long steps: where it shows, and the setting that overrides it."""

from __future__ import annotations

import pytest

from churn_mlops.progress import PROGRESS_ENV, ProgressSettingError, progress


def _count_to(n: int) -> None:
    with progress(n, "counting", "thing") as bar:
        for _ in range(n):
            bar.update(1)


def test_always_on_draws_one_bar_with_the_step_and_its_unit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "1")
    _count_to(7)
    captured = capsys.readouterr()
    assert "counting: 100%" in captured.err
    assert "7/7" in captured.err and "thing" in captured.err
    assert captured.out == ""  # the log (stdout) stays clean


@pytest.mark.parametrize("setting", ["0", "auto", None])
def test_off_or_auto_without_a_terminal_draws_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setting: str | None
) -> None:
    # pytest's captured stderr is no terminal, like CI, a pipe or `kedro run > file`
    if setting is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, setting)
    _count_to(7)
    assert capsys.readouterr().err == ""


def test_a_jupyter_kernel_gets_the_bar_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys
    import types

    class RunningKernel:
        @staticmethod
        def initialized() -> bool:
            return True

    kernelapp = types.ModuleType("ipykernel.kernelapp")
    kernelapp.IPKernelApp = RunningKernel  # type: ignore[attr-defined]
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", kernelapp)
    _count_to(3)
    assert "3/3" in capsys.readouterr().err


def test_an_unknown_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "sometimes")
    with pytest.raises(ProgressSettingError, match=r"CHURN_PROGRESS='sometimes'.*auto.*1.*0"):
        _count_to(1)
