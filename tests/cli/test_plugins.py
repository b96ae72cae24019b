"""A user's own style loss and own term: one Python class and one YAML file in their own folders, no edit of
stylelab, run exactly as the README says (from the folder that holds the Python file)."""

import re

import pytest
from conftest import REPO, SHALLOW, SMOKE, differing_hparams, events, hparams_of, run_cli

MY_LOSSES = '''
from stylelab.losses import StyleLoss


class MeanOnly(StyleLoss):
    """E_l = scale * (1/N) sum_i (mu_i(F) - mu_i(S))^2: the first moments only."""

    def __init__(self, layers, scale: float = 1.0):
        super().__init__(layers)
        self.scale = scale

    def representation(self, f):
        return f.mean(dim=(2, 3))  # (B, N)

    def score(self, mu, mu_style):
        return self.scale * (mu - mu_style).pow(2).mean()
'''


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mylosses.py").write_text(MY_LOSSES)
    option = tmp_path / "my configs" / "loss" / "style"
    option.mkdir(parents=True)
    (option / "mine.yaml").write_text("_target_: mylosses.MeanOnly\nscale: 2.0\n")
    return tmp_path


@pytest.mark.slow
def test_a_users_loss_from_their_own_config_dir(tmp_path, user_files, content_png, style_png):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "--config-dir",
        str(user_files / "my configs"),
        "loss/style=mine",
        "loss.style.scale=3",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=3",
        "log.every=1",
        f"hydra.run.dir={run_dir}",
        env={"PYTHONPATH": str(user_files / "code")},
    )
    assert proc.returncode == 0, proc.stderr
    acc = events(run_dir)
    first = {layer: acc.Scalars(f"loss/style/{layer}")[0].value for layer in ("relu1_1", "relu2_1")}
    assert acc.Scalars("loss/style")[0].value == pytest.approx(0.5 * first["relu1_1"] + 0.5 * first["relu2_1"])
    values = [e.value for e in acc.Scalars("loss/style")]
    assert values[-1] < values[0]  # it was optimised
    hp = hparams_of(run_dir)
    assert hp["loss/style"] == "mine" and hp["loss.style.scale"] == 3.0


@pytest.mark.slow
def test_a_users_loss_through_the_searchpath_in_a_sweep_and_its_typos(tmp_path, user_files, content_png, style_png):
    common = [
        f"hydra.searchpath=[file://{user_files / 'my configs'}]",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=2",
    ]
    env = {"PYTHONPATH": str(user_files / "code")}
    proc = run_cli("-m", "loss/style=gram,mine", *common, f"hydra.sweep.dir={tmp_path / 'sweep'}", env=env)
    assert proc.returncode == 0, proc.stderr
    chosen = sorted(hparams_of(job)["loss/style"] for job in (tmp_path / "sweep").iterdir() if job.is_dir())
    assert chosen == ["gram", "mine"]
    proc = run_cli("loss/style=mine", "loss.style.scael=3", *common, f"hydra.run.dir={tmp_path / 'typo'}", env=env)
    assert proc.returncode != 0 and "scael" in proc.stderr and not (tmp_path / "typo").exists()


def readme_block(language: str, first_line: str) -> str:
    """The code block of `language` that starts with `first_line` (the user's files, as printed) in the README's
    page on extending stylelab."""
    for block in re.findall(rf"```{language}\n(.*?)```", (REPO / "docs" / "extending.md").read_text(), re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"no {language} block starting {first_line!r} in docs/extending.md")


@pytest.fixture
def readme_files(tmp_path):
    """The README's mylosses.py, myterms.py and their YAMLs, written where the README puts them."""
    for language, first in (
        ("python", "# mylosses.py"),
        ("python", "# myterms.py"),
        ("yaml", "# my_configs/loss/style/mine.yaml"),
        ("yaml", "# my_configs/loss/terms/means.yaml"),
    ):
        block = readme_block(language, first)
        path = tmp_path / first.removeprefix("# ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
    return tmp_path


@pytest.mark.slow
def test_the_readmes_own_loss_runs_as_written_from_its_folder(readme_files, content_png, style_png):
    """The console script, run in the folder that holds mylosses.py, with no PYTHONPATH: the README's command."""
    run_dir = readme_files / "run"
    proc = run_cli(
        "--config-dir",
        "my_configs",
        "loss/style=mine",
        "loss.style.scale=3",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=2",
        f"hydra.run.dir={run_dir}",
        cwd=readme_files,
        script=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert hparams_of(run_dir)["loss/style"] == "mine"
    proc = run_cli(
        "-m",
        "hydra.searchpath=[file://my_configs]",
        "loss/style=gram,mine",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=2",
        f"hydra.sweep.dir={readme_files / 'sweep'}",
        cwd=readme_files,
        script=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_users_fourth_term_whose_weight_is_swept(readme_files, content_png, style_png):
    """The README's ContentMeans, added to the objective from the user's config folder, its weight swept."""
    sweep = readme_files / "sweep"
    proc = run_cli(
        "--config-dir",
        "my_configs",
        "+loss/terms=means",
        "-m",
        "loss.terms.means.weight=1,100",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=2",
        "log.every=1",
        f"hydra.sweep.dir={sweep}",
        cwd=readme_files,
        script=True,
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["loss.terms.means.weight=1", "loss.terms.means.weight=100"]
    for job, weight in zip(jobs, (1.0, 100.0)):
        acc = events(sweep / job)
        value = acc.Scalars("loss/means")[0].value
        assert acc.Scalars("loss/means/relu3_1")[0].value == pytest.approx(value) and value > 0
        assert acc.Scalars("loss/weighted/means")[0].value == pytest.approx(weight * value, rel=1e-5)
        # the total is every term's weighted value: content, style, and the user's term (tv, laplacian weigh 0)
        total = sum(acc.Scalars(f"loss/weighted/{t}")[0].value for t in ("content", "style", "means"))
        assert acc.Scalars("loss/total")[0].value == pytest.approx(total, rel=1e-5)
        assert float(hparams_of(sweep / job)["loss.terms.means.weight"]) == weight  # as typed: "1", "100"
        assert "loss.terms.means.weight" in differing_hparams(sweep / job)


def test_a_target_that_cannot_be_imported_is_one_sentence(tmp_path, content_png, style_png):
    (tmp_path / "my_configs" / "loss" / "style").mkdir(parents=True)
    (tmp_path / "my_configs" / "loss" / "style" / "mine.yaml").write_text("_target_: nowhere.MeanOnly\n")
    run_dir = tmp_path / "run"
    proc = run_cli(
        "--config-dir",
        "my_configs",
        "loss/style=mine",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        script=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "stylelab: error: cannot import nowhere.MeanOnly for loss.style (No module named "
        "'nowhere'); put nowhere.py in the folder you run stylelab from, or add its folder "
        "to PYTHONPATH"
    )
    assert not run_dir.exists()
