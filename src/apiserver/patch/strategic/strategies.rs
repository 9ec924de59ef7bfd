//! The patch strategies of the built-in kinds served here: the `patchStrategy` / `patchMergeKey`
//! struct tags of the k8s.io/api v0.32 and k8s.io/apimachinery v0.32 Go types.
//!
//! Sources (tag v0.32.9 of each repository):
//! - k8s.io/apimachinery `pkg/apis/meta/v1/types.go`: ObjectMeta (lines 241, 259).
//! - k8s.io/api `core/v1/types.go`: PersistentVolumeClaimStatus (783), Container (2806-2866),
//!   PodSpec (3786-4089), EphemeralContainerCommon (4697-4745), PodStatus (4871-4982),
//!   ReplicationControllerStatus (5162), ServiceStatus (5369), ServiceSpec (5461),
//!   ServiceAccount (5842), NamespaceStatus (6554).
//! - k8s.io/api `apps/v1/types.go`: StatefulSetStatus (310), DeploymentSpec (394),
//!   DeploymentStatus (516), DaemonSetStatus (726), ReplicaSetStatus (902).
//! - k8s.io/api `batch/v1/types.go`: JobStatus (507).
//!
//! The kinds without a tag anywhere below their metadata: ConfigMap, Secret, Endpoints,
//! PersistentVolume, Lease (coordination/v1), Event (core/v1 and events.k8s.io/v1), Ingress
//! (networking/v1), the RBAC kinds (rbac/v1: neither PolicyRule nor Subject carries a strategy,
//! so `rules` and `subjects` are replaced whole), and CustomResourceDefinition (apiextensions/v1:
//! its one tag, JSONSchemaProps' `x-kubernetes-validations`, lies below `spec.versions`, a list
//! without a strategy, which a patch replaces whole and so never descends into).
//!
//! Only the fields on a path to a tag are listed: a patch treats a field missing here as the Go
//! code treats an untagged one (objects merge key by key, lists are replaced, scalars set), and
//! nothing below a list that is replaced whole is ever merged. `ContainerStatus`' tags
//! (`volumeMounts`, `allocatedResourcesStatus`) are therefore absent: `containerStatuses` has no
//! strategy. (Node and ComponentStatus carry tags too; they are not served.)

/// A Go struct, by the fields that lead to a patch strategy.
#[derive(Debug)]
pub struct Type {
    pub fields: &'static [Field],
}

/// A struct field by its JSON name, with its `patchStrategy` tag as written ("merge",
/// "retainKeys", "merge,retainKeys", "replace" or empty), its `patchMergeKey` (or empty), and
/// its type (for a list, the element type) when something below it is tagged.
#[derive(Debug)]
pub struct Field {
    pub json: &'static str,
    pub strategy: &'static str,
    pub merge_key: &'static str,
    pub ty: Option<&'static Type>,
}

/// A field the patch descends into, untagged itself.
const fn nested(json: &'static str, ty: &'static Type) -> Field {
    Field {
        json,
        strategy: "",
        merge_key: "",
        ty: Some(ty),
    }
}

/// A tagged field whose elements carry no further tags.
const fn tagged(json: &'static str, strategy: &'static str, merge_key: &'static str) -> Field {
    Field {
        json,
        strategy,
        merge_key,
        ty: None,
    }
}

/// A list merged by `merge_key` whose elements are of type `ty`.
const fn merged(json: &'static str, merge_key: &'static str, ty: &'static Type) -> Field {
    Field {
        json,
        strategy: "merge",
        merge_key,
        ty: Some(ty),
    }
}

/// k8s.io/apimachinery meta/v1 ObjectMeta.
pub static OBJECT_META: Type = Type {
    fields: &[
        tagged("ownerReferences", "merge", "uid"),
        tagged("finalizers", "merge", ""),
    ],
};

/// core/v1 Container; EphemeralContainerCommon (inlined in EphemeralContainer) has the same
/// tags on the same fields.
pub static CONTAINER: Type = Type {
    fields: &[
        tagged("ports", "merge", "containerPort"),
        tagged("env", "merge", "name"),
        tagged("volumeMounts", "merge", "mountPath"),
        tagged("volumeDevices", "merge", "devicePath"),
    ],
};

/// core/v1 PodSpec.
pub static POD_SPEC: Type = Type {
    fields: &[
        tagged("volumes", "merge,retainKeys", "name"),
        merged("initContainers", "name", &CONTAINER),
        merged("containers", "name", &CONTAINER),
        merged("ephemeralContainers", "name", &CONTAINER),
        tagged("imagePullSecrets", "merge", "name"),
        tagged("hostAliases", "merge", "ip"),
        tagged("topologySpreadConstraints", "merge", "topologyKey"),
        tagged("schedulingGates", "merge", "name"),
        tagged("resourceClaims", "merge,retainKeys", "name"),
    ],
};

/// core/v1 PodTemplateSpec.
pub static POD_TEMPLATE_SPEC: Type = Type {
    fields: &[nested("metadata", &OBJECT_META), nested("spec", &POD_SPEC)],
};

/// The `conditions` of a status merged by `type` (DeploymentStatus, ServiceStatus,
/// NamespaceStatus, PodStatus' first field, and the other kinds' statuses).
const CONDITIONS: Field = tagged("conditions", "merge", "type");

/// A kind with only its metadata on a tagged path.
pub static METADATA_ONLY: Type = Type {
    fields: &[nested("metadata", &OBJECT_META)],
};

/// A status whose only tagged field is `conditions`.
static CONDITIONS_STATUS: Type = Type {
    fields: &[CONDITIONS],
};

/// A spec whose only tagged path is its pod `template` (ReplicaSetSpec, StatefulSetSpec,
/// DaemonSetSpec, JobSpec, ReplicationControllerSpec).
static TEMPLATE_SPEC: Type = Type {
    fields: &[nested("template", &POD_TEMPLATE_SPEC)],
};

/// A kind whose spec has a pod template and whose status has conditions.
static WORKLOAD: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &TEMPLATE_SPEC),
        nested("status", &CONDITIONS_STATUS),
    ],
};

/// apps/v1 Deployment.
pub static DEPLOYMENT: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &Type {
                // DeploymentSpec
                fields: &[
                    nested("template", &POD_TEMPLATE_SPEC),
                    tagged("strategy", "retainKeys", ""),
                ],
            },
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
};

/// core/v1 Service.
pub static SERVICE: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &Type {
                // ServiceSpec
                fields: &[tagged("ports", "merge", "port")],
            },
        ),
        nested("status", &CONDITIONS_STATUS),
    ],
};

/// core/v1 ServiceAccount.
pub static SERVICE_ACCOUNT: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        tagged("secrets", "merge", "name"),
    ],
};

/// core/v1 Namespace (and PersistentVolumeClaim: metadata and status conditions only).
static METADATA_AND_CONDITIONS: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("status", &CONDITIONS_STATUS),
    ],
};

/// core/v1 Pod.
static POD: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested("spec", &POD_SPEC),
        nested(
            "status",
            &Type {
                // PodStatus
                fields: &[
                    CONDITIONS,
                    tagged("hostIPs", "merge", "ip"),
                    tagged("podIPs", "merge", "ip"),
                    tagged("resourceClaimStatuses", "merge,retainKeys", "name"),
                ],
            },
        ),
    ],
};

/// batch/v1 CronJob: its job template's spec has the pod template.
static CRON_JOB: Type = Type {
    fields: &[
        nested("metadata", &OBJECT_META),
        nested(
            "spec",
            &Type {
                // CronJobSpec
                fields: &[nested(
                    "jobTemplate",
                    &Type {
                        // JobTemplateSpec
                        fields: &[
                            nested("metadata", &OBJECT_META),
                            nested("spec", &TEMPLATE_SPEC),
                        ],
                    },
                )],
            },
        ),
    ],
};

/// The patch strategies of a built-in kind's whole object (every kind has ObjectMeta).
pub fn for_kind(group: &str, kind: &str) -> &'static Type {
    match (group, kind) {
        ("apps", "Deployment") => &DEPLOYMENT,
        ("", "Service") => &SERVICE,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "Namespace") | ("", "PersistentVolumeClaim") => &METADATA_AND_CONDITIONS,
        ("", "Pod") => &POD,
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => &WORKLOAD,
        ("batch", "CronJob") => &CRON_JOB,
        _ => &METADATA_ONLY,
    }
}
