use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = oplog::cli::Cli::parse();
    match cli.run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", oplog::cli::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
