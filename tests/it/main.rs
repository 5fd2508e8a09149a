mod daemon;
mod harness;
