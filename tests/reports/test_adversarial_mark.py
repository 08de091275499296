"""The compile summary and the listing show which losses are marked `adversarial loss …`, and only those."""

from __future__ import annotations

import spec_lang
from spec_lang.reports.summary import listing, summary

TEXT = """model m()
input xs : float[batch, 2]
input ys : int[batch] < 2
input fake : float[batch, 1]
stack features { dense 4 tanh }
stack label { dense 2 softmax }
stack critic { dense 1 linear }
let fs = features(xs)
loss xent = crossentropy(label(fs), ys)
adversarial loss critic_loss = mse(critic(reverse(fs, lambda = 1)), fake)
optimize sgd(lr = 0.1)
"""


def test_the_summary_marks_the_adversarial_loss() -> None:
    text = summary(spec_lang.loads(TEXT).program, "m.dann", None, "FAST_COMPILE")
    losses = text.split("\nlosses\n")[1].split("\n\n")[0].splitlines()
    assert losses == [
        "  xent         = crossentropy(label(fs), ys)",
        "  critic_loss  = mse(critic(reverse(fs, λ = 1)), fake)  (adversarial)",
    ]
    unmarked = summary(spec_lang.loads(TEXT.replace("adversarial ", "")).program, "m.dann", None, "FAST_COMPILE")
    assert "(adversarial)" not in unmarked


def test_the_listing_writes_the_mark_as_the_language_does() -> None:
    lines = listing(spec_lang.loads(TEXT).program).splitlines()
    assert "  loss xent = crossentropy(label(fs), ys)" in lines
    assert "  adversarial loss critic_loss = mse(critic(reverse(fs, λ = 1)), fake)" in lines
