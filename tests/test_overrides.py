"""stylelab.overrides: composing a config from overrides, Python values in Hydra's grammar, and every mistake
as one sentence."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from stylelab.errors import StyleLabError
from stylelab.overrides import compose, compose_with_choices, override_value, quote


@pytest.mark.parametrize(
    "value,written",
    [
        (None, "null"),
        (True, "true"),
        (5e8, "500000000.0"),
        (3, "3"),
        (["relu1_1", "relu2_1"], "['relu1_1','relu2_1']"),
        ("a b.jpg", "'a b.jpg'"),
        ("it's", "'it\\'s'"),
    ],
)
def test_python_values_in_hydras_grammar_read_back_as_themselves(value, written):
    assert override_value(value) == written
    parsed = OverridesParser.create().parse_override(f"key={written}").value()
    assert parsed == value


@pytest.mark.parametrize("text", ["plain", "it's", "back\\slash\\", "${not.an.interpolation}", "a\\'b"])
def test_quote_reads_back_exactly(text):
    assert compose(f"content={quote(text)}").content == text


def test_keywords_and_overrides_compose_the_same_config_and_name_the_choices():
    cfg, choices = compose_with_choices("loss.beta=5", optimizer="adam", steps=7)
    assert cfg.loss.beta == 5.0 and cfg.steps == 7 and cfg.optimizer._target_.endswith("Adam")
    assert choices["optimizer"] == "adam" and choices["loss/style"] == "gram" and "hydra" not in cfg
    assert compose("optimizer=adam", "steps=7", "loss.beta=5") == cfg


@pytest.mark.parametrize(
    "overrides,sentence",
    [
        (["loss.alpah=1"], "no setting loss.alpah; did you mean loss.alpha?"),
        (
            ["optimizer=lbgfs"],
            "no option lbgfs in group optimizer; choose adam, lbfgs or lbfgs_torch (did you mean optimizer=lbfgs?)",
        ),
        (["+loss.gama=1"], "no setting loss.gama"),
        (["steps=many"], "steps=many: 'many' is not a whole number"),
        (
            ["content=a b(c).jpg"],
            "cannot read 'content=a b(c).jpg': a value with special characters needs quotes, "
            "e.g. \"content='a b(c).jpg'\" (the double quotes are for the shell)",
        ),
    ],
)
def test_a_mistake_is_one_sentence(overrides, sentence):
    with pytest.raises(StyleLabError) as err:
        compose_with_choices(*overrides)
    assert str(err.value).startswith(sentence), str(err.value)
    assert "\n" not in str(err.value)
