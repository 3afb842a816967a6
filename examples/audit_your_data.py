"""Audit a folder of your own OHLCV files (or the MSFT sample) for look-ahead leakage.

    python examples/audit_your_data.py [FOLDER_OR_SAMPLE] [--cuts N]
"""

from __future__ import annotations

import argparse

from causalcast import load_ohlcv
from causalcast.audit import run_audit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", nargs="?", default="sample:msft")
    parser.add_argument("--cuts", type=int, default=10)
    args = parser.parse_args()
    frames, reports = load_ohlcv(args.source, with_reports=True)
    for symbol, rep in reports.items():
        print(f"{symbol}: {rep.n_bars} bars {rep.start}..{rep.end}, "
              f"{len(rep.warnings)} gap warnings")
    report = run_audit(frames, n_cuts=args.cuts)
    print(f"audit {'passed' if report.passed else 'FAILED'}: {len(report.checks)} checks")
    for failure in report.failures[:10]:
        print(f"  {failure.name} {failure.subject} {failure.symbol}: {failure.detail}")
    raise SystemExit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
