"""Write stylelab/configs/signatures.json from the signatures of the package's options (stylelab.signatures.SIGNATURES).

    python scripts/schemas.py

Run it after changing a parameter of a class or function that a config option names in `_target_`;
tests/test_config.py fails, naming this command, until the file agrees with the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from stylelab import signatures

if __name__ == "__main__":
    path = Path(signatures.__file__).parent / "configs" / signatures.SIGNATURES
    rows = [
        f"  {json.dumps(target)}: {json.dumps(fields)}" for target, fields in signatures.signatures_in_code().items()
    ]
    path.write_text("{\n" + ",\n".join(rows) + "\n}\n", encoding="utf-8")
    print(f"wrote {path}")
