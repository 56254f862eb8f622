"""Distributed runs: Ray (:mod:`.ray`) and Spark (:mod:`.spark`), each an optional extra."""
