"""Every figure a claim test draws is audited (:func:`losslab.plots.figures.audit`) before it is saved: a test
fails on a colour bar with too few labelled ticks, a linear colour scale over too many decades, a clip not
stated, or a truncated bar axis, in whichever claim figure it draws."""

import pytest

from losslab.plots import figures


@pytest.fixture(autouse=True)
def _audit_every_figure(monkeypatch):
    problems: list[str] = []
    save = figures.save

    def audited_save(fig, stem):
        problems.extend(f"{stem}: {p}" for p in figures.audit(fig))
        return save(fig, stem)

    monkeypatch.setattr(figures, "save", audited_save)
    yield
    assert problems == [], "figure defects:\n" + "\n".join(problems)
