"""stylelab --help (stylelab.cli.help): the groups, options and examples, a mistake in one sentence, a closed pipe."""

import subprocess
import sys

import pytest
from conftest import REPO, run_cli


def test_help_lists_groups_options_and_examples():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for text in (
        "init: content, image, noise, style",
        "optimizer: adam, lbfgs, lbfgs_torch",
        "loss/style: gram, mean_std, sliced_w2, w2",
        "loss.style_layers",
        "stylelab -m loss.beta=",
        "model.weights=random",
    ):
        assert text in proc.stdout, text
    assert "_schema" not in proc.stdout  # the schemas behind the options are not options to pick


@pytest.mark.slow  # a few CLI processes: seconds each
def test_help_with_a_mistake_is_one_sentence():
    proc = run_cli("--help", "optimizer=adm")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "stylelab: error: no option adm in group optimizer; choose adam, lbfgs or "
        "lbfgs_torch (did you mean optimizer=adam?)"
    )


def test_help_into_a_pipe_that_closes_early_is_quiet():
    proc = subprocess.run(
        f"'{sys.executable}' -m stylelab.cli --help | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.stdout.startswith("stylelab: neural style transfer") and proc.stderr == ""
