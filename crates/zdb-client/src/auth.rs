//! Challenge-response authentication (`AUTH SECURE`, `SELECT … SECURE`): the hash is the
//! server's and the client's shared contract, kept in `stack-abi`.

pub use stack_abi::zdb::secure_hash;
