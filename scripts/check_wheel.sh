#!/usr/bin/env bash
# The wheel as a user installs it: built from this tree, installed into a fresh venv (not editable), and run
# from a folder outside the tree: --help, one run on random weights, a clip (with the video extra), and Fig 4 of the
# paper composed.
#   scripts/check_wheel.sh            (CI runs it; it prints what it checked and exits non-zero on a failure)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" wheel --quiet --no-deps -w "$work/dist" "$repo"
wheel=$(ls "$work/dist"/stylelab-*.whl)
"$work/venv/bin/pip" install --quiet "$wheel[video]"
cd "$work"  # outside the source tree: only the installed package can answer
echo "wheel: $(basename "$work"/dist/stylelab-*.whl)"
"$work/venv/bin/python" -c "import stylelab, stylelab.cli; assert '/site-packages/' in stylelab.__file__, stylelab.__file__"
"$work/venv/bin/stylelab" --help > help.txt
grep -q "loss/style: gram, mean_std, sliced_w2, w2" help.txt && grep -q "model: vgg16, vgg19" help.txt
grep -q "video/flow: deepflow, dis, files, raft" help.txt
echo "stylelab --help: $(wc -l < help.txt) lines, the groups and options listed"
"$work/venv/bin/python" - <<'PY'
from PIL import Image
Image.effect_noise((48, 40), 60).convert("RGB").save("content.png")
Image.linear_gradient("L").resize((40, 56)).convert("RGB").save("style.png")
import os
os.mkdir("frames")
wide = Image.effect_noise((56, 40), 60).convert("RGB")
for i in range(3):  # a pan: 2 px per frame
    wide.crop((2 * i, 0, 2 * i + 48, 40)).save(f"frames/{i + 1}.png")
PY
"$work/venv/bin/stylelab" content=content.png style=style.png model.weights=random image.size=32 steps=2 \
    log.progress=false hydra.run.dir=run 2>&1 | grep -v "NOT meaningful art"
test -s run/final.png && test -s run/.hydra/config.yaml
"$work/venv/bin/stylelab" content=frames/ style=style.png model.weights=random image.size=32 steps=2 \
    log.progress=false hydra.run.dir=clip 2>&1 | grep -v "NOT meaningful art"
test -s clip/video.mp4 && test -s clip/frames/00003.png && test -s clip/flows/dis-medium/00002_00001.flo
"$work/venv/bin/stylelab" -m +experiment=gatys2016/fig4 --cfg job > fig4.yaml
grep -q "composition_vii" fig4.yaml
echo "stylelab -m +experiment=gatys2016/fig4 --cfg job: composed ($(wc -l < fig4.yaml) lines)"
echo "wheel check: passed"
