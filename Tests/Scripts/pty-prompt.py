#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Drives `aem-pcr seal`'s SRK prompt on a pseudo-terminal, as a shell would run it in the
foreground of a terminal, and reports what the terminal and the process looked like (JSON).

usage: pty-prompt.py SIGNAL OUTFILE -- COMMAND...

The command runs in its own process group, the terminal's foreground group, of a new session
whose leader (this script's child, "the shell") waits for it; standard input is /dev/null (the
password must come from /dev/tty), standard output and error go to OUTFILE; its RLIMIT_CORE is
raised to unlimited. Once "TPM SRK password: " appears, the script records ECHO and the
process's core limit (/proc/PID/limits), types "srk " and sends SIGNAL:

- INT, TERM, HUP, QUIT: then waits for the process to end;
- TSTP: records whether the process stopped and ECHO while stopped, sends SIGCONT, records
  ECHO, types "pass" and Enter (the password is "srk pass") and waits for the end.

Report: echo_at_prompt, core_limit, echo_stopped, stopped, echo_continued, echo_after
(ECHO once the process ended), exit (status) or signal, core_dumped (WCOREDUMP).
"""
import fcntl, json, os, resource, select, signal, sys, termios, time

def echo(fd):
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)

def main():
    signame, outfile = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    master, slave = os.openpty()
    report_r, report_w = os.pipe()
    shell = os.fork()
    if shell == 0:
        os.close(master); os.close(report_r)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        child = os.fork()
        if child == 0:
            os.setpgid(0, 0)
            # A shell's foreground job: no signal blocked or ignored (the test runner's
            # threads block some, and a child inherits the mask).
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP, signal.SIGQUIT):
                signal.signal(s, signal.SIG_DFL)
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(slave, os.getpid())
            signal.signal(signal.SIGTTOU, signal.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            null = os.open("/dev/null", os.O_RDONLY)
            out = os.open(outfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(null, 0); os.dup2(out, 1); os.dup2(out, 2)
            os.close(slave)
            os.execv(cmd[0], cmd)
        try:
            os.setpgid(child, child)
        except OSError:
            pass
        os.write(report_w, b"%d\n" % child)
        while True:
            _, status = os.waitpid(child, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                continue
            os.write(report_w, b"%d\n" % status)
            os._exit(0)
    os.close(report_w)
    reports = os.fdopen(report_r)
    child = int(reports.readline())
    result = {}
    seen = b""
    deadline = time.time() + 120
    while b"TPM SRK password: " not in seen:
        if time.time() > deadline:
            result["error"] = "no prompt: " + seen.decode(errors="replace")
            break
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        if os.waitpid(shell, os.WNOHANG)[0] != 0:
            break
    if "error" not in result:
        time.sleep(0.2)
        result["echo_at_prompt"] = echo(slave)
        with open("/proc/%d/limits" % child) as f:
            for line in f:
                if line.startswith("Max core file size"):
                    result["core_limit"] = line.split()[4]
        os.write(master, b"srk ")
        time.sleep(0.2)
        sig = getattr(signal, "SIG" + signame)
        os.kill(child, sig)
        if signame == "TSTP":
            time.sleep(0.5)
            with open("/proc/%d/stat" % child) as f:
                result["stopped"] = f.read().rsplit(")", 1)[1].split()[0] == "T"
            result["echo_stopped"] = echo(slave)
            os.kill(child, signal.SIGCONT)
            time.sleep(0.5)
            result["echo_continued"] = echo(slave)
            os.write(master, b"pass\r")
    # The process must end by itself within the bound; if not, it is killed and said.
    r, _, _ = select.select([reports], [], [], 60)
    if not r:
        result["error"] = "still running 60 s after the signal"
        os.kill(child, signal.SIGKILL)
    status = int(reports.readline())
    os.waitpid(shell, 0)
    result["echo_after"] = echo(slave)
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
        result["core_dumped"] = os.WCOREDUMP(status)
    else:
        result["exit"] = os.WEXITSTATUS(status)
    print(json.dumps(result))

main()
