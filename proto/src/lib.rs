//! The one place Backflow's wire contracts live: gRPC services and the protobuf
//! payloads carried on NATS. Services depend on this crate, never on each other.

/// Encoded `FileDescriptorSet` of every Backflow proto, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/backflow_descriptor.bin"));

/// Who may call each RPC (the `access` method option) and the token check the
/// credentials service answers for every other service.
pub mod auth {
    pub mod v1 {
        tonic::include_proto!("backflow.auth.v1");
    }
}

pub mod credentials {
    pub mod v1 {
        tonic::include_proto!("backflow.credentials.v1");
    }
}

pub mod gitsync {
    pub mod v1 {
        tonic::include_proto!("backflow.gitsync.v1");
    }
}

pub mod catalog {
    pub mod v1 {
        tonic::include_proto!("backflow.catalog.v1");
    }
}

pub mod dbtcloud {
    pub mod v1 {
        tonic::include_proto!("backflow.dbtcloud.v1");
    }
}

pub mod retl {
    pub mod v1 {
        tonic::include_proto!("backflow.retl.v1");
    }
}

/// Operator APIs every process serves for the services it runs (dead letters).
pub mod ops {
    pub mod v1 {
        tonic::include_proto!("backflow.ops.v1");
    }
}

pub mod subjects;

pub use prost;
pub use prost_types;
pub use tonic;
