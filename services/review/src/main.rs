use kommerce_review::{App, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = kommerce_kit::config::load()?;
    kommerce_kit::telemetry::init("review", &settings.telemetry);
    let app = App::build(settings).await?;
    tracing::info!(port = app.port(), "review service listening");
    app.run_until_stopped().await?;
    Ok(())
}
