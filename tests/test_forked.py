"""The forked commands the suite runs (tests/forked.py) behave as a new interpreter would for what tests read."""
import os

from conftest import run_python

SHOW = """
import os, sys, torch
print(os.getcwd(), os.environ.get("WHO"), torch.get_num_threads(), oct(os.umask(0)), sys.argv[1:], sys.path[0] == "")
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def test_a_forked_command_gets_its_own_folder_environment_threads_umask_arguments_and_exit_code(tmp_path):
    proc = run_python("-c", SHOW, "a b", cwd=tmp_path, env={"WHO": "me", "OMP_NUM_THREADS": "2"}, umask=0o027)
    assert proc.returncode == 3 and proc.stderr == "to stderr\n"
    assert proc.stdout.split() == [str(tmp_path), "me", "2", "0o27", "['a", "b']", "True"]
    again = run_python("-c", SHOW, cwd=tmp_path)  # nothing carried over from the command before
    assert again.stdout.split()[1:3] == ["None", os.environ["OMP_NUM_THREADS"]]
