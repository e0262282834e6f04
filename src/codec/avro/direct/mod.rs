//! Avro bodies read straight into jq values, with `serde_avro_fast`: no intermediate value tree,
//! strings sliced out of the payload instead of copied, and of a top-level record only the
//! fields a pipeline's programs read are built (the others are read all the same, so what is
//! refused does not change). It gives the values [`super`] documents: it is built only for
//! a schema whose every node it reads as apache-avro does, node by node, and a body it cannot
//! read is handed to apache-avro, whose reading (or reason for refusing) is the answer.

mod build;
mod node;
mod seed;
#[cfg(test)]
mod tests;

pub use node::Direct;
