pub(crate) mod osquery;

pub(crate) use osquery::*;
