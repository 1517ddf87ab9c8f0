//! Prints the route manifest (`make routes` writes it to `infra/routes.json`).

fn main() {
    print!("{}", local_runner::manifest::render());
}
