//! The seeded operation generator: what users, GitOps tools and the machine do to the operator,
//! as a plain list of operations drawn from one seed (the same seed always gives the same list).

use crate::controller::CrashPoint;
use std::fmt;

/// How many namespaces and customers per namespace the operations touch: few, so they collide.
pub const NAMESPACES: usize = 2;
pub const CUSTOMERS: usize = 3;

/// A small, stable pseudo-random generator (SplitMix64): the plan of a seed never changes with a
/// dependency's version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a permission's `spec.resources` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resources {
    Reservations,
    SavingsPlan,
    Both,
}

impl Resources {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Resources::Reservations => &["AzureReservations"],
            Resources::SavingsPlan => &["AzureSavingsPlan"],
            Resources::Both => &["AzureReservations", "AzureSavingsPlan"],
        }
    }
}

/// An injected failure on the embedded API server's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    pub verb: &'static str,
    pub resource: &'static str,
    pub count: usize,
    pub code: u16,
}

/// An injected failure on the Partner Center / Azure simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartnerCenterFault {
    /// `count` answers of this status to requests on paths containing `path`.
    Status {
        path: &'static str,
        code: u16,
        count: u64,
    },
    /// 429 with Retry-After.
    Throttle { path: &'static str, count: u64 },
    /// The connection drops after `ms`; with `after_effect` the change was made first.
    Timeout {
        path: &'static str,
        ms: u64,
        after_effect: bool,
    },
}

/// One operation of a run. `ns` and `c` index the namespaces and customers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    ApplyCustomer {
        ns: usize,
        c: usize,
    },
    DeleteCustomer {
        ns: usize,
        c: usize,
    },
    /// `eligible: false` applies an offer that is not eligible for reservations.
    ApplySubscription {
        ns: usize,
        c: usize,
        eligible: bool,
    },
    DeleteSubscription {
        ns: usize,
        c: usize,
    },
    /// `owner: false` applies the role as Reader (recorded, does not count).
    ApplyRole {
        ns: usize,
        c: usize,
        owner: bool,
    },
    DeleteRole {
        ns: usize,
        c: usize,
    },
    ApplyPermission {
        ns: usize,
        c: usize,
        enabled: bool,
        resources: Resources,
    },
    SetEnabled {
        ns: usize,
        c: usize,
        enabled: bool,
    },
    /// `times` merge patches of `enabled` in a row, alternating, without waiting.
    FlipFlop {
        ns: usize,
        c: usize,
        times: usize,
    },
    SetResources {
        ns: usize,
        c: usize,
        resources: Resources,
    },
    DeletePermission {
        ns: usize,
        c: usize,
    },
    /// Delete, then create again under the same name at once.
    RecreatePermission {
        ns: usize,
        c: usize,
        enabled: bool,
    },
    /// A second permission for the same customer (it must lose to the older one).
    ApplyRival {
        ns: usize,
        c: usize,
    },
    DeleteRival {
        ns: usize,
        c: usize,
    },
    /// A permission naming a customer that does not exist.
    ApplyDangling {
        ns: usize,
        c: usize,
    },
    /// An object with an invalid value (the server must refuse it).
    ApplyInvalid {
        ns: usize,
        which: usize,
    },
    DeleteNamespace {
        ns: usize,
    },
    ApiFailures(ApiFailure),
    DropWatches,
    /// Forget the change history: resumed watches get 410 Expired.
    Compact,
    /// Hold live watch events this long (0 ends it).
    WatchDelay {
        ms: u64,
    },
    /// Answer every API request this much later (0 ends it).
    Latency {
        ms: u64,
    },
    PartnerCenter(PartnerCenterFault),
    /// Abort a replica mid-flight and start it again.
    Kill {
        replica: usize,
    },
    /// Abort whichever replica holds the leader Lease (with one replica: that one).
    KillLeader,
    /// Stop a replica the way SIGTERM does (finish, release the Lease) and start it again.
    Restart {
        replica: usize,
    },
    /// The replica's next reconcile to reach `point` stops there; it is then killed and started
    /// again.
    ArmCrash {
        replica: usize,
        point: CrashPoint,
    },
    /// Let the controllers work for a while.
    Pause {
        ms: u64,
    },
}

impl Op {
    /// Whether this operation injects a fault (as opposed to changing objects or waiting).
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Op::ApiFailures(_)
                | Op::DropWatches
                | Op::Compact
                | Op::WatchDelay { .. }
                | Op::Latency { .. }
                | Op::PartnerCenter(_)
                | Op::Kill { .. }
                | Op::KillLeader
                | Op::Restart { .. }
                | Op::ArmCrash { .. }
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What the plan may contain.
#[derive(Clone, Copy, Debug)]
pub struct PlanShape {
    pub replicas: usize,
    /// Partner Center faults only make sense with the simulator.
    pub partner_center: bool,
}

/// The operations of a seed.
pub fn plan(seed: u64, ops: usize, shape: PlanShape) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..ops).map(|_| next_op(&mut rng, shape)).collect()
}

fn next_op(rng: &mut Rng, shape: PlanShape) -> Op {
    match rng.below(100) {
        0..=59 => object_op(rng),
        60..=89 => fault_op(rng, shape),
        _ => Op::Pause {
            ms: 20 + rng.below(200),
        },
    }
}

fn resources(rng: &mut Rng) -> Resources {
    [
        Resources::Reservations,
        Resources::SavingsPlan,
        Resources::Both,
    ][rng.index(3)]
}

/// A change to the objects, weighted towards the permission switch.
fn object_op(rng: &mut Rng) -> Op {
    let ns = rng.index(NAMESPACES);
    let c = rng.index(CUSTOMERS);
    match rng.below(100) {
        0..=9 => Op::ApplyCustomer { ns, c },
        10..=13 => Op::DeleteCustomer { ns, c },
        14..=23 => Op::ApplySubscription {
            ns,
            c,
            eligible: rng.chance(80),
        },
        24..=26 => Op::DeleteSubscription { ns, c },
        27..=36 => Op::ApplyRole {
            ns,
            c,
            owner: rng.chance(80),
        },
        37..=39 => Op::DeleteRole { ns, c },
        40..=51 => Op::ApplyPermission {
            ns,
            c,
            enabled: rng.chance(70),
            resources: resources(rng),
        },
        52..=63 => Op::SetEnabled {
            ns,
            c,
            enabled: rng.chance(60),
        },
        64..=69 => Op::FlipFlop {
            ns,
            c,
            times: 2 + rng.index(5),
        },
        70..=74 => Op::SetResources {
            ns,
            c,
            resources: resources(rng),
        },
        75..=79 => Op::DeletePermission { ns, c },
        80..=84 => Op::RecreatePermission {
            ns,
            c,
            enabled: rng.chance(70),
        },
        85..=88 => Op::ApplyRival { ns, c },
        89..=90 => Op::DeleteRival { ns, c },
        91..=93 => Op::ApplyDangling { ns, c },
        94..=98 => Op::ApplyInvalid {
            ns,
            which: rng.index(4),
        },
        _ => Op::DeleteNamespace { ns },
    }
}

/// A fault: API server answers and watches, Partner Center answers, process deaths.
fn fault_op(rng: &mut Rng, shape: PlanShape) -> Op {
    let replica = rng.index(shape.replicas.max(1));
    match rng.below(100) {
        0..=29 => Op::ApiFailures(api_failure(rng)),
        30..=36 => Op::DropWatches,
        37..=40 => Op::Compact,
        41..=46 => Op::WatchDelay {
            ms: [0, 0, 50, 200, 500][rng.index(5)],
        },
        47..=51 => Op::Latency {
            ms: [0, 0, 5, 30][rng.index(4)],
        },
        52..=71 if shape.partner_center => Op::PartnerCenter(partner_center_fault(rng)),
        72..=75 => Op::Kill { replica },
        76..=79 => Op::KillLeader,
        80..=84 => Op::Restart { replica },
        _ => Op::ArmCrash {
            replica,
            point: CrashPoint::ALL[rng.index(CrashPoint::ALL.len())],
        },
    }
}

fn api_failure(rng: &mut Rng) -> ApiFailure {
    const VERBS: [&str; 6] = ["get", "list", "watch", "patch", "update", "create"];
    const RESOURCES: [&str; 6] = [
        "purchasepermissions",
        "customers",
        "azuresubscriptions",
        "roleassignments",
        "events",
        "*",
    ];
    const CODES: [u16; 5] = [409, 410, 429, 500, 503];
    ApiFailure {
        verb: VERBS[rng.index(VERBS.len())],
        resource: RESOURCES[rng.index(RESOURCES.len())],
        count: 1 + rng.index(3),
        code: CODES[rng.index(CODES.len())],
    }
}

fn partner_center_fault(rng: &mut Rng) -> PartnerCenterFault {
    const PATHS: [&str; 4] = ["/SelfServePolicy", "/customers", "/roleAssignments", "/v1/"];
    let path = PATHS[rng.index(PATHS.len())];
    match rng.below(3) {
        0 => PartnerCenterFault::Status {
            path,
            code: [500, 503, 504][rng.index(3)],
            count: 1 + rng.below(3),
        },
        1 => PartnerCenterFault::Throttle {
            path,
            count: 1 + rng.below(3),
        },
        _ => PartnerCenterFault::Timeout {
            path,
            ms: 50 + rng.below(200),
            after_effect: rng.chance(50),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: PlanShape = PlanShape {
        replicas: 2,
        partner_center: true,
    };

    #[test]
    fn a_seed_always_gives_the_same_plan() {
        assert_eq!(plan(7, 200, SHAPE), plan(7, 200, SHAPE));
        assert_ne!(plan(7, 200, SHAPE), plan(8, 200, SHAPE));
        // The generator itself is fixed: the first numbers of seed 0 never change.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn a_long_plan_holds_every_family_of_operation() {
        let ops = plan(1, 3000, SHAPE);
        let has = |f: &dyn Fn(&Op) -> bool| ops.iter().any(f);
        assert!(has(&|o| matches!(o, Op::FlipFlop { .. })));
        assert!(has(&|o| matches!(o, Op::DeleteNamespace { .. })));
        assert!(has(&|o| matches!(o, Op::ApplyInvalid { .. })));
        assert!(has(&|o| matches!(o, Op::Kill { replica: 1 })));
        assert!(has(&|o| matches!(o, Op::KillLeader)));
        assert!(has(&|o| matches!(o, Op::PartnerCenter(_))));
        assert!(has(&|o| matches!(
            o,
            Op::ArmCrash {
                point: CrashPoint::AfterStatusWrite,
                ..
            }
        )));
        let cluster = plan(
            1,
            3000,
            PlanShape {
                replicas: 1,
                partner_center: false,
            },
        );
        assert!(!cluster.iter().any(|o| matches!(o, Op::PartnerCenter(_))));
        assert!(!cluster.iter().any(|o| matches!(o, Op::Kill { replica: 1 })));
    }
}
