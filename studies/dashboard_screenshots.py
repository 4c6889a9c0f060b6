"""Screenshots of what optuna-dashboard shows for a demo study, as the README quotes them.

    python studies/dashboard_screenshots.py      # needs Debian's chromium (apt-get install chromium)

Runs a small demo study in a temporary folder, serves it with `lrsearch dashboard` from another
folder (the artifacts are found from the storage), and saves headless-chromium screenshots to
docs/img/: the first screen (`/` opens lrsearch's note: the winner, its trained LR, why trials
stopped), the study page with lrsearch's figures, and the page of a trial promoted to a longer run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PORT = 18093


def _shot(url: str, out: Path, height: int = 1000) -> None:
    subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--window-size=1400,{height}", "--virtual-time-budget=15000",
                    f"--screenshot={out}", url], check=True, capture_output=True, timeout=180)


def main() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        run, other = Path(tmp, "run"), Path(tmp, "elsewhere")
        run.mkdir()
        other.mkdir()
        db = run / "dash.db"
        subprocess.run([sys.executable, "-m", "lrsearch", "demo", "--trials", "24", "--epochs", "3", "--study", "dash",
                        "--storage", str(db), "--out", str(run), "--quiet"], cwd=run, env=env, check=True,
                       capture_output=True)
        server = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", str(db), "--port", str(PORT)],
                                  cwd=other, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{PORT}"
            for _ in range(120):
                try:
                    with urllib.request.urlopen(f"{base}/api/studies", timeout=2) as r:
                        body = json.load(r)
                    studies = body["study_summaries"]
                    break
                except OSError:
                    time.sleep(0.5)
            study_id = studies[0]["study_id"]
            with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=10) as r:
                trials = json.load(r)["trials"]
            promoted = [t["number"] for t in trials if any(a["key"] == "promoted_from" for a in t["user_attrs"])]
            out = ROOT / "docs" / "img"
            out.mkdir(parents=True, exist_ok=True)
            _shot(f"{base}/", out / "dashboard_note.png", 1000)  # what a user sees first
            _shot(f"{base}/dashboard/studies/{study_id}", out / "dashboard_study.png", 2300)
            if promoted:
                _shot(f"{base}/dashboard/studies/{study_id}/trials?numbers={promoted[-1]}", out / "dashboard_trial.png", 1000)
            print(f"wrote {out}/dashboard_note.png, dashboard_study.png" + (", dashboard_trial.png" if promoted else ""))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
