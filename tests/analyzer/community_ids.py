"""Checks conn.log's community_id column against the `communityid` package from PyPI
(Corelight's reference implementation of the Community ID spec).

Usage: community_ids.py [--seed N] CONN_LOG...   (Zeek TSV conn.log files)

For every row, the Community ID of its 5-tuple is computed by the package and compared with
the row's `community_id`. ICMP rows carry the message type as `id.orig_p` and the counterpart
type or the code as `id.resp_p`, which is what the package takes as type and code (it maps
request/reply types to their counterpart itself). Prints one JSON object:
{"rows": N, "mismatches": [{"file", "row", "ours", "theirs"}, ...]}; exit status 0 either way
(the caller judges), 2 on a usage or parse error.
"""

import argparse
import json
import sys

import communityid

PROTOS = {
    6: communityid.PROTO_TCP,
    17: communityid.PROTO_UDP,
    1: communityid.PROTO_ICMP,
    58: communityid.PROTO_ICMP6,
    132: communityid.PROTO_SCTP,
}


def rows(path):
    fields = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#fields\t"):
                fields = line.split("\t")[1:]
            elif line.startswith("#") or not line:
                continue
            else:
                if fields is None:
                    raise ValueError(f"{path}: data before #fields")
                yield dict(zip(fields, line.split("\t")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    cid = communityid.CommunityID(seed=args.seed)
    total = 0
    mismatches = []
    for path in args.logs:
        for row in rows(path):
            if "community_id" not in row:
                print(f"{path}: no community_id column", file=sys.stderr)
                return 2
            proto = int(row["ip_proto"])
            tuple_ = communityid.FlowTuple(
                PROTOS[proto],
                row["id.orig_h"],
                row["id.resp_h"],
                int(row["id.orig_p"]),
                int(row["id.resp_p"]),
            )
            theirs = cid.calc(tuple_)
            total += 1
            if theirs != row["community_id"]:
                mismatches.append(
                    {"file": path, "row": row["uid"], "ours": row["community_id"], "theirs": theirs}
                )
    print(json.dumps({"rows": total, "mismatches": mismatches}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
