# Sourced by .ci/run before the test runs: the Triton venv for tests/serving/test_triton_server.py.
source .ci/triton-venv.sh
