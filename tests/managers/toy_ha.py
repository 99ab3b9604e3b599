#!/usr/bin/python3
"""A toy HA manager for the command adapter's tests: two nodes, a standby that promotes
itself when its primary has not answered for 3 s.  It is a real (small, split-brain
prone) manager: it runs initdb, pg_ctl and pg_basebackup itself, as a user's scripts would.

    toy_ha.py setup | start NODE | members
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

ENV = os.environ


def node_env(node: str, key: str) -> str:
    return ENV[f"WALSIM_{node}_{key}"]


def bindir(prog: str) -> str:
    return os.path.join(ENV["WALSIM_BINDIR"], prog)


def opts(node: str) -> str:
    return (f"-c port={node_env(node, 'PORT')} -c listen_addresses=127.0.0.1,{node_env(node, 'HOST')} "
            f"-c unix_socket_directories={node_env(node, 'DIR')} -c cluster_name={node} "
            f"-c logging_collector=on -c log_directory={node_env(node, 'DIR')} "
            f"-c log_filename={os.path.basename(node_env(node, 'LOG'))}")


def pg_ctl(node: str, *args: str) -> None:
    subprocess.run([bindir("pg_ctl"), "-D", node_env(node, "DATA"), "-w", "-t", "60", *args], check=True,
                   stdout=sys.stderr)


def setup() -> None:
    primary = ENV["WALSIM_PRIMARY"]
    pw = os.path.join(ENV["WALSIM_MANAGER_DIR"], "pw")
    with open(pw, "w") as f:
        f.write(ENV["WALSIM_SUPERUSER_PASSWORD"] + "\n")
    subprocess.run([bindir("initdb"), "-D", node_env(primary, "DATA"), "-U", "postgres", "--pwfile", pw,
                    "--auth-local", "peer", "--auth-host", "scram-sha-256", "-E", "UTF8", "--locale", "C",
                    "--no-sync"], check=True, stdout=sys.stderr)
    with open(os.path.join(node_env(primary, "DATA"), "postgresql.conf"), "a") as f:
        f.write("wal_level = replica\nhot_standby = on\nwal_log_hints = on\nfsync = off\n"
                "wal_sender_timeout = 5s\nwal_receiver_timeout = 5s\nshared_buffers = 32MB\n")
    with open(os.path.join(node_env(primary, "DATA"), "pg_hba.conf"), "w") as f:
        f.write("local all all peer\n")
        for addr in ENV["WALSIM_HBA_ADDRESSES"].split():
            f.write(f"host all all {addr}/32 scram-sha-256\nhost replication all {addr}/32 scram-sha-256\n")
    pg_ctl(primary, "-l", os.path.join(node_env(primary, "DIR"), "setup.log"), "-o", opts(primary), "start")
    host, port = node_env(primary, "PEER").split(":")
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True,
                         passfile=ENV["WALSIM_PASSFILE"]) as conn:
        conn.execute(f"CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD "
                     f"'{ENV['WALSIM_REPLICATION_PASSWORD']}'")
    for node in ENV["WALSIM_NODES"].split():
        if node == primary:
            continue
        subprocess.run([bindir("pg_basebackup"), "-D", node_env(node, "DATA"), "-R", "-X", "stream",
                        "--checkpoint=fast", "--no-sync", "-d",
                        f"host={host} port={port} user=replicator application_name={node} "
                        f"passfile={ENV['WALSIM_PASSFILE']}"], check=True, stdout=sys.stderr)
    pg_ctl(primary, "-m", "fast", "stop")


def alive(node: str) -> bool:
    host, port = node_env(node, "PEER").split(":")
    try:
        with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=1,
                             passfile=ENV["WALSIM_PASSFILE"]) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def start(node: str) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    pg_ctl(node, "-l", os.path.join(node_env(node, "DIR"), "pg_ctl.log"), "-o", opts(node), "start")
    primary = ENV["WALSIM_PRIMARY"]
    missed = 0
    promoted = node == primary
    while not stopping:
        time.sleep(0.5)
        if promoted:
            continue
        missed = 0 if alive(primary) else missed + 1
        if missed >= 6:
            print(f"toy_ha: {primary} has not answered for 3 s: promoting {node}", flush=True)
            pg_ctl(node, "promote")
            promoted = True
    pg_ctl(node, "-m", "fast", "stop")


def members() -> None:
    for node in ENV["WALSIM_NODES"].split():
        try:
            with psycopg.connect(host="127.0.0.1", port=node_env(node, "PORT"), user="postgres",
                                 dbname="postgres", connect_timeout=1, passfile=ENV["WALSIM_PASSFILE"]) as conn:
                rec = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            print(f"{node} {'standby' if rec else 'primary'} healthy")
        except psycopg.Error:
            print(f"{node} down unhealthy")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "setup":
        setup()
    elif cmd == "start":
        start(sys.argv[2])
    elif cmd == "members":
        members()
    else:
        sys.exit(f"usage: {sys.argv[0]} setup | start NODE | members")
