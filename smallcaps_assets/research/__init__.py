"""Research tools around core: measurements that bridge data roots and the simulated market."""
