# Convenience targets; each calls the scripts the README documents.
.PHONY: setup demo test lint bench

setup:
	bash scripts/setup_system.sh
	bash scripts/setup_venv.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint: setup
	.venv/bin/python -m pytest -m linter avs_net_ros/test

bench: setup
	.venv/bin/python -m benchmarks.bench_spectrogram
