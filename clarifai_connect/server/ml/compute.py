"""Compute clusters and nodepools, as far as runners need them: PostComputeClusters,
GetComputeCluster, ListComputeClusters, DeleteComputeClusters, PostNodepools, GetNodepool,
ListNodepools, DeleteNodepools.

On the local server they are names only (the machine is the one the runner runs on): they
exist so that the official SDK's ``ModelRunner`` — which names a compute cluster and a
nodepool — can attach to a runner here. Both belong to a user, not to an app.
"""

from __future__ import annotations

import sqlite3

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from ..common import fresh_copy, invalid, page_window, timestamp, visibility_private
from ..rpc import CallContext, RpcFailure, rpc
from ..store import now


def owner(req) -> str:
    """The user a user-level request acts for."""
    user_id = req.user_app_id.user_id
    if not user_id:
        raise invalid("user_app_id.user_id is required")
    return user_id


def load_cluster(db: sqlite3.Connection, user_id: str,
                 cluster_id: str) -> resources_pb2.ComputeCluster:
    """The user's compute cluster; fails the call naming it when missing."""
    row = db.execute("SELECT proto FROM compute_clusters WHERE user_id=? AND id=?",
                     (user_id, cluster_id)).fetchone()
    if row is None:
        raise RpcFailure(codes.COMPUTE_CLUSTER_DOES_NOT_EXIST, "Compute cluster does not exist",
                         f"compute cluster '{cluster_id}' does not exist")
    return resources_pb2.ComputeCluster.FromString(row[0])


def load_nodepool(db: sqlite3.Connection, user_id: str, cluster_id: str,
                  nodepool_id: str) -> resources_pb2.Nodepool:
    """The nodepool of a compute cluster; fails the call naming it when missing."""
    row = db.execute("SELECT proto FROM nodepools WHERE user_id=? AND compute_cluster_id=? "
                     "AND id=?", (user_id, cluster_id, nodepool_id)).fetchone()
    if row is None:
        raise RpcFailure(codes.NODEPOOL_DOES_NOT_EXIST, "Nodepool does not exist",
                         f"nodepool '{nodepool_id}' of compute cluster '{cluster_id}' "
                         "does not exist")
    return resources_pb2.Nodepool.FromString(row[0])


@rpc("PostComputeClusters")
def post_compute_clusters(ctx: CallContext, req: service_pb2.PostComputeClustersRequest):
    user_id = owner(req)
    if not req.compute_clusters:
        raise invalid("no compute_clusters given")
    created = []
    with ctx.server.store.write() as db:
        for given in req.compute_clusters:
            cluster = fresh_copy(db, "compute_clusters", {"user_id": user_id}, given,
                                 "compute cluster")
            stamp = now()
            cluster.user_id = user_id
            cluster.created_at.CopyFrom(timestamp(stamp))
            cluster.modified_at.CopyFrom(timestamp(stamp))
            cluster.cluster_type = cluster.cluster_type or "local-dev"
            if not cluster.HasField("visibility"):
                cluster.visibility.CopyFrom(visibility_private())
            db.execute("INSERT INTO compute_clusters(user_id, id, seq, proto) VALUES (?,?,?,?)",
                       (user_id, cluster.id, ctx.server.store.next_seq(db, "compute_clusters"),
                        cluster.SerializeToString()))
            created.append(cluster)
    return service_pb2.MultiComputeClusterResponse(compute_clusters=created)


@rpc("GetComputeCluster")
def get_compute_cluster(ctx: CallContext, req: service_pb2.GetComputeClusterRequest):
    cluster = load_cluster(ctx.server.store.read(), owner(req), req.compute_cluster_id)
    return service_pb2.SingleComputeClusterResponse(compute_cluster=cluster)


@rpc("ListComputeClusters")
def list_compute_clusters(ctx: CallContext, req: service_pb2.ListComputeClustersRequest):
    limit, offset = page_window(req)
    rows = ctx.server.store.read().execute(
        "SELECT proto FROM compute_clusters WHERE user_id=? ORDER BY seq LIMIT ? OFFSET ?",
        (owner(req), limit, offset))
    return service_pb2.MultiComputeClusterResponse(
        compute_clusters=[resources_pb2.ComputeCluster.FromString(r[0]) for r in rows])


@rpc("DeleteComputeClusters")
def delete_compute_clusters(ctx: CallContext, req: service_pb2.DeleteComputeClustersRequest):
    """Delete compute clusters with their nodepools (their runners stay, unattached)."""
    user_id = owner(req)
    if not req.ids:
        raise invalid("no compute cluster ids given")
    with ctx.server.store.write() as db:
        for cluster_id in req.ids:
            load_cluster(db, user_id, cluster_id)
        for cluster_id in req.ids:
            db.execute("DELETE FROM nodepools WHERE user_id=? AND compute_cluster_id=?",
                       (user_id, cluster_id))
            db.execute("DELETE FROM compute_clusters WHERE user_id=? AND id=?",
                       (user_id, cluster_id))
    return status_pb2.BaseResponse()


@rpc("PostNodepools")
def post_nodepools(ctx: CallContext, req: service_pb2.PostNodepoolsRequest):
    user_id = owner(req)
    if not req.nodepools:
        raise invalid("no nodepools given")
    created = []
    with ctx.server.store.write() as db:
        cluster = load_cluster(db, user_id, req.compute_cluster_id)
        for given in req.nodepools:
            nodepool = fresh_copy(db, "nodepools", {"user_id": user_id,
                                                    "compute_cluster_id": cluster.id},
                                  given, "nodepool")
            stamp = now()
            nodepool.compute_cluster.CopyFrom(cluster)
            nodepool.created_at.CopyFrom(timestamp(stamp))
            nodepool.modified_at.CopyFrom(timestamp(stamp))
            if not nodepool.HasField("visibility"):
                nodepool.visibility.CopyFrom(visibility_private())
            db.execute("INSERT INTO nodepools(user_id, compute_cluster_id, id, seq, proto) "
                       "VALUES (?,?,?,?,?)",
                       (user_id, cluster.id, nodepool.id,
                        ctx.server.store.next_seq(db, "nodepools"), nodepool.SerializeToString()))
            created.append(nodepool)
    return service_pb2.MultiNodepoolResponse(nodepools=created)


@rpc("GetNodepool")
def get_nodepool(ctx: CallContext, req: service_pb2.GetNodepoolRequest):
    nodepool = load_nodepool(ctx.server.store.read(), owner(req), req.compute_cluster_id,
                             req.nodepool_id)
    return service_pb2.SingleNodepoolResponse(nodepool=nodepool)


@rpc("ListNodepools")
def list_nodepools(ctx: CallContext, req: service_pb2.ListNodepoolsRequest):
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    user_id = owner(req)
    load_cluster(db, user_id, req.compute_cluster_id)
    rows = db.execute("SELECT proto FROM nodepools WHERE user_id=? AND compute_cluster_id=? "
                      "ORDER BY seq LIMIT ? OFFSET ?",
                      (user_id, req.compute_cluster_id, limit, offset))
    return service_pb2.MultiNodepoolResponse(
        nodepools=[resources_pb2.Nodepool.FromString(r[0]) for r in rows])


@rpc("DeleteNodepools")
def delete_nodepools(ctx: CallContext, req: service_pb2.DeleteNodepoolsRequest):
    user_id = owner(req)
    if not req.ids:
        raise invalid("no nodepool ids given")
    with ctx.server.store.write() as db:
        for nodepool_id in req.ids:
            load_nodepool(db, user_id, req.compute_cluster_id, nodepool_id)
        db.executemany("DELETE FROM nodepools WHERE user_id=? AND compute_cluster_id=? AND id=?",
                       [(user_id, req.compute_cluster_id, i) for i in req.ids])
    return status_pb2.BaseResponse()
