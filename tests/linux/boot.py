# SPDX-License-Identifier: MIT
"""One QEMU TCG boot of the suite's guest, optionally with the
exitless-qemu-agent as its ivshmem server; acts on the guest's "XL@" lines
(signals to the agent) and returns the console log and the agent's JSON."""
import json
import os
import signal
import subprocess
import threading
import time

QBOOT = '/usr/share/qemu/qboot.rom'


class Agent:
    """exitless-qemu-agent as a child: ready line, JSON lines, signals."""

    def __init__(self, exe, sock, vcpus, extra=()):
        self.proc = subprocess.Popen(
            [exe, '--socket', sock, '--vcpus', str(vcpus), '--json', *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.json = []
        self.lines = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip('\n')
            self.lines.append(line)
            if line.startswith('{'):
                try:
                    self.json.append(json.loads(line))
                except ValueError:
                    self.lines.append('bad json: ' + line)
            elif line.startswith('listening'):
                self.ready.set()

    def _err(self):
        for line in self.proc.stderr:
            self.lines.append('stderr: ' + line.rstrip('\n'))

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_json(self, n, timeout=10):
        end = time.monotonic() + timeout
        while len(self.json) < n and time.monotonic() < end:
            time.sleep(0.05)
        return len(self.json) >= n

    def finish(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(0.1)  # let the reader threads drain
        return self.proc.returncode


def act(step, agent, log):
    """The host's part of a guest step (the guest idles 4 s meanwhile)."""
    if agent is None:
        return
    if step == 'stop2':
        agent.signal(signal.SIGSTOP)
        time.sleep(2)
        agent.signal(signal.SIGCONT)
    elif step == 'kill':
        agent.signal(signal.SIGUSR1)  # last stats before it dies
        agent.wait_json(len(agent.json) + 1, 3)
        agent.signal(signal.SIGKILL)
    elif step == 'term':
        agent.signal(signal.SIGTERM)
        try:
            agent.proc.wait(5)
        except subprocess.TimeoutExpired:
            log.append('HOST: agent did not exit on SIGTERM')
    elif step == 'ping':
        for _ in range(5):
            agent.signal(signal.SIGUSR2)
            time.sleep(0.2)
    elif step == 'snap':
        agent.signal(signal.SIGUSR1)
    log.append(f'HOST: did {step}')


def boot(kernel, initrd, plan, work, agent_exe=None, smp=2, timeout=int(os.environ.get("XL_BOOT_TIMEOUT", "240")),
         count=500, modparams='', agent_args=()):
    """Boot once; returns (console lines, agent or None, qemu exit status)."""
    sock = os.path.join(work, 'ivshmem.sock')
    if os.path.exists(sock):
        os.unlink(sock)
    agent = None
    cmd = ['qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'max,vendor=GenuineIntel',
           '-smp', str(smp), '-m', '256', '-nographic', '-no-reboot',
           '-net', 'none', '-kernel', kernel, '-initrd', initrd,
           '-append', f'console=ttyS0 panic=-1 loglevel=5 xlplan={plan} '
                      f'xlcount={count} xlmod={modparams}']
    if os.path.exists(QBOOT):
        cmd += ['-bios', QBOOT]
    if agent_exe:
        agent = Agent(agent_exe, sock, smp, agent_args)
        if not agent.ready.wait(10):
            agent.finish()
            raise SystemExit('agent did not start:\n' + '\n'.join(agent.lines))
        cmd += ['-chardev', f'socket,path={sock},id=ivs',
                '-device', f'ivshmem-doorbell,chardev=ivs,vectors={smp}']
    log = []
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors='replace')
    timer = threading.Timer(timeout, qemu.kill)
    timer.start()
    for line in qemu.stdout:
        line = line.rstrip('\r\n')
        log.append(line)
        if line.startswith('XL@ '):
            act(line[4:].strip(), agent, log)
    rc = qemu.wait()
    timer.cancel()
    if rc < 0:
        log.append(f'HOST: qemu killed after {timeout} s')
    if agent:
        agent.signal(signal.SIGUSR1)
        agent.wait_json(len(agent.json) + 1, 2)
        agent.finish()
    return log, agent, rc
