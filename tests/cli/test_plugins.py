"""A user's own style loss: one Python class and one YAML file in their own folders, no edit of stylelab."""

import pytest

from conftest import SHALLOW, SMOKE, events, hparams_of, run_cli

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
    proc = run_cli("--config-dir", str(user_files / "my configs"), "loss/style=mine", "loss.style.scale=3",
                   f"content={content_png}", f"style={style_png}", *SMOKE, *SHALLOW, "steps=3", "log.every=1",
                   f"hydra.run.dir={run_dir}", env={"PYTHONPATH": str(user_files / "code")})
    assert proc.returncode == 0, proc.stderr
    acc = events(run_dir / "tb")
    first = {layer: acc.Scalars(f"loss/style/{layer}")[0].value for layer in ("relu1_1", "relu2_1")}
    assert acc.Scalars("loss/style")[0].value == pytest.approx(0.5 * first["relu1_1"] + 0.5 * first["relu2_1"])
    values = [e.value for e in acc.Scalars("loss/style")]
    assert values[-1] < values[0]  # it was optimised
    hp = hparams_of(run_dir / "tb")
    assert hp["loss/style"] == "mine" and hp["loss.style.scale"] == 3.0


@pytest.mark.slow
def test_a_users_loss_through_the_searchpath_in_a_sweep_and_its_typos(tmp_path, user_files, content_png, style_png):
    common = [f"hydra.searchpath=[file://{user_files / 'my configs'}]", f"content={content_png}",
              f"style={style_png}", *SMOKE, *SHALLOW, "steps=2"]
    env = {"PYTHONPATH": str(user_files / "code")}
    proc = run_cli("-m", "loss/style=gram,mine", *common, f"hydra.sweep.dir={tmp_path / 'sweep'}", env=env)
    assert proc.returncode == 0, proc.stderr
    chosen = sorted(hparams_of(job / "tb")["loss/style"] for job in (tmp_path / "sweep").iterdir() if job.is_dir())
    assert chosen == ["gram", "mine"]
    proc = run_cli("loss/style=mine", "loss.style.scael=3", *common, f"hydra.run.dir={tmp_path / 'typo'}", env=env)
    assert proc.returncode != 0 and "scael" in proc.stderr and not (tmp_path / "typo").exists()
