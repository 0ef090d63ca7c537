"""Train the general variant on this machine: technical and confluence features, volatility-scaled barriers.

    python local_training/train_confluence_model.py --symbols BTC/USDT ETH/USDT --kind xgboost --device auto
    python -m mcp_trader.local_training.train_confluence_model ...   (installed)

Arguments: --help, or local_training/cli.py.
"""

import sys
from pathlib import Path

try:
    from mcp_trader.local_training.cli import main
except ModuleNotFoundError:  # a checkout without the package installed: import it from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from local_training.cli import main

if __name__ == "__main__":
    sys.exit(main(variant="general"))
