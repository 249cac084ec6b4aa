"""What a search journal was started with, and why a rerun cannot resume it.

A search (`edgecomp search`) and a distill-auto run resume from their Optuna journal only when the rerun
asks the same thing: the resolved recipe (every default filled in), the ladder or space, gates, limits and
seed. The study keeps a hash of that (`fingerprint`) and, since issue 25's resume note, the data itself
(`fingerprint_data`), so a refusal names what differs ("steps[0].augment: off -> auto") instead of a bare
"another recipe": after an edgecomp upgrade that added a recipe default, that is the answer a user needs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from toolchain.base.errors import RecipeError

MAX_NAMED = 3  # differing keys named in the error


def plain(what: Any) -> Any:
    """`what` as JSON data (paths and other objects as strings), the form the journal stores."""
    return json.loads(json.dumps(what, sort_keys=True, default=str))


def mark(what: Any) -> str:
    return hashlib.sha256(json.dumps(plain(what), sort_keys=True).encode()).hexdigest()[:16]


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The keys where two JSON values differ, with both sides ("steps[0].augment: 'off' -> 'auto'")."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append(f"{sub}: absent -> {_short(new[k])}")
            elif k not in new:
                out.append(f"{sub}: {_short(old[k])} -> absent")
            else:
                out += differences(old[k], new[k], sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = enumerate(zip(old, new, strict=True))
        return [d for i, (a, b) in pairs for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path or 'the whole run'}: {_short(old)} -> {_short(new)}"]


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def check(study: Any, what: Any, out: Path, kind: str) -> None:
    """Stamp a new study with `what`, or refuse one started with something else, naming the difference."""
    data = plain(what)
    found = study.user_attrs.get("fingerprint")
    if found is None:
        study.set_user_attr("fingerprint", mark(data))
        study.set_user_attr("fingerprint_data", data)
        return
    if found == mark(data):
        return
    old = study.user_attrs.get("fingerprint_data")
    if old is None:
        why = "it was started by an older edgecomp, which does not record its settings (new recipe defaults?)"
    else:
        diff = differences(old, data)
        more = f", and {len(diff) - MAX_NAMED} more" if len(diff) > MAX_NAMED else ""
        why = "it differs in " + "; ".join(diff[:MAX_NAMED]) + more
    raise RecipeError(
        f"{out} holds a {kind} that this command cannot resume: {why}",
        hint="rerun the command that started it to resume it, or remove that folder (or use another --out) "
        "to start anew",
    )
