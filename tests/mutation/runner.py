"""The test command mutmut runs for each mutant: pytest on the given tests, any failure a kill.

mutmut 2.x counts only exit code 1 as a killed mutant; pytest answers 2 when a mutant
breaks an import (collection error), 3 for an internal error, 4 for a usage error,
and 5 when no test ran.  A mutant that stops the tests from running is caught too,
so every non-zero exit becomes 1 — and so does a run past TIMEOUT or MEMORY.
Hypothesis runs fewer examples here (the mutants are many), derandomised so a kill
is reproducible.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv):
    scratch = os.path.join(SCRATCH, "pbxcall-mutant-%d" % os.getpid())
    os.makedirs(scratch)
    env = dict(os.environ, PBXCALL_FUZZ_EXAMPLES="200", PBXCALL_FUZZ_REQUESTS="300", PBXCALL_TEST_TMP=scratch,
               PBXCALL_TEST_TRANSCRIPTS=os.path.join(scratch, "transcripts"))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--hypothesis-profile=mutation", "-o", "addopts="] + argv
    try:
        code = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=limit, timeout=TIMEOUT).returncode
    except subprocess.TimeoutExpired:  # a mutant that loops: the tests did not pass
        return 1
    finally:
        sweep()
    return 0 if code == 0 else 1


#: where each run's spools and transcripts go, removed after it (or after the next run,
#: for a runner mutmut killed)
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"


def sweep():
    import shutil

    for name in os.listdir(SCRATCH):
        if name.startswith("pbxcall-mutant-"):
            pid = int(name.rsplit("-", 1)[1])
            if pid == os.getpid() or not os.path.exists("/proc/%d" % pid):
                shutil.rmtree(os.path.join(SCRATCH, name), ignore_errors=True)


#: seconds and bytes one test run may take: a mutant that loops forever or eats the
#: machine's memory (an index never advanced) is a kill, not a hang
TIMEOUT = 60
MEMORY = 2 * 1024 ** 3


def limit():
    import ctypes
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    # mutmut SIGKILLs this runner when a mutant runs past its own time limit: the tests
    # must die with it, not go on as an orphan beside the next mutant's run.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the runner died before prctl
        os._exit(1)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
