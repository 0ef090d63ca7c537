"""Trading: signals, the risk guard, the ledger, and the paper and Aster brokers behind one desk."""
