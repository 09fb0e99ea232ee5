# SPDX-License-Identifier: MIT
"""What a Linux suite boot needs: the kernel ABI whose headers are installed,
its vmlinuz (cached in the build tree, fetched with apt-get download when
absent), the module built with kbuild, and a busybox-static initramfs."""
import glob
import os
import shutil
import subprocess
import sys

SKIP = 77


def skip(msg):
    print(f'SKIP: {msg}')
    sys.exit(SKIP)


def kernel_abi():
    """The newest amd64 kernel ABI with headers installed, or skip."""
    dirs = sorted(glob.glob('/usr/src/linux-headers-*-amd64'))
    dirs = [d for d in dirs if os.path.isfile(os.path.join(d, 'Makefile'))]
    if not dirs:
        skip('no linux-headers-*-amd64 (apt-get install linux-headers-amd64)')
    d = dirs[-1]
    return os.path.basename(d)[len('linux-headers-'):], d


def vmlinuz(cache, abi):
    """Path of vmlinuz-ABI: the cache, /boot, or extracted from the .deb."""
    os.makedirs(cache, exist_ok=True)
    cached = os.path.join(cache, f'vmlinuz-{abi}')
    if os.path.isfile(cached):
        return cached
    boot = f'/boot/vmlinuz-{abi}'
    if os.access(boot, os.R_OK):
        shutil.copyfile(boot, cached)
        return cached
    # Only the image: installing linux-image would run update-initramfs
    # (an initrd nothing uses) two or three times.
    pkg = f'linux-image-{abi}'
    r = subprocess.run(['apt-get', 'download', pkg], cwd=cache,
                       capture_output=True, text=True)
    if r.returncode != 0 and os.geteuid() == 0:
        # a fresh machine may have no package lists yet
        subprocess.run(['apt-get', 'update', '-q'], capture_output=True)
        r = subprocess.run(['apt-get', 'download', pkg], cwd=cache,
                           capture_output=True, text=True)
    debs = glob.glob(os.path.join(cache, f'{pkg}_*.deb'))
    if r.returncode != 0 or not debs:
        skip(f'no vmlinuz-{abi} and `apt-get download {pkg}` failed: '
             f'{r.stderr.strip()[-200:]}')
    tar = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', debs[0]],
                           stdout=subprocess.PIPE)
    subprocess.run(['tar', '-x', '-C', cache, '--strip-components=2',
                    f'./boot/vmlinuz-{abi}'], stdin=tar.stdout, check=True)
    tar.wait()
    for d in debs:
        os.unlink(d)
    if not os.path.isfile(cached):
        skip(f'{pkg} holds no boot/vmlinuz-{abi}')
    return cached


def build_module(src_root, headers, out):
    """Build examples/linux with kbuild into @out; returns the .ko path."""
    r = subprocess.run(['make', '-s', '-C', os.path.join(src_root, 'examples/linux'),
                        f'KDIR={headers}', f'MODULE_OUT={out}'],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        raise SystemExit('module build failed')
    return os.path.join(out, 'exitless_pvtimer.ko')


def _copy_with_libs(binary, root, name):
    """Copy a dynamic program and the libraries ldd names into @root."""
    shutil.copy(binary, os.path.join(root, name))
    out = subprocess.run(['ldd', binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        lib = next((p for p in parts if p.startswith('/')), None)
        if lib:
            dst = os.path.join(root, lib.lstrip('/'))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(lib, dst)


def initramfs(work, init_sh, workload, module):
    """Pack busybox-static, /init, the workload, the module (and cyclictest
    when installed) into a gzip'd newc cpio; returns its path."""
    busybox = '/bin/busybox'
    info = subprocess.run(['file', '-L', busybox], capture_output=True,
                          text=True).stdout if shutil.which('file') else 'static'
    if not os.path.isfile(busybox) or 'dynamic' in info:
        raise SystemExit('busybox-static is not installed (apt-get install busybox-static)')
    root = os.path.join(work, 'initramfs')
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, 'bin'))
    shutil.copy(busybox, os.path.join(root, 'bin/busybox'))
    shutil.copy(init_sh, os.path.join(root, 'init'))
    os.chmod(os.path.join(root, 'init'), 0o755)
    shutil.copy(workload, os.path.join(root, 'workload'))
    if module:
        shutil.copy(module, os.path.join(root, 'exitless_pvtimer.ko'))
    ct = shutil.which('cyclictest')
    if ct:
        _copy_with_libs(ct, root, 'cyclictest')
    out = os.path.join(work, 'initramfs.cpio.gz')
    files = subprocess.run(['find', '.'], cwd=root, capture_output=True,
                           text=True, check=True).stdout
    with open(out, 'wb') as f:
        cpio = subprocess.Popen(['cpio', '-o', '-H', 'newc', '--quiet'], cwd=root,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        gz = subprocess.Popen(['gzip', '-1'], stdin=cpio.stdout, stdout=f)
        cpio.stdin.write(files.encode())
        cpio.stdin.close()
        cpio.stdout.close()
        gz.wait()
        if cpio.wait() != 0 or gz.returncode != 0:
            raise SystemExit('cpio failed')
    return out
