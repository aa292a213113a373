use kommerce_user::{App, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = kommerce_kit::config::load()?;
    kommerce_kit::telemetry::init(kommerce_user::SERVICE, &settings.telemetry);
    let app = App::build(settings).await?;
    tracing::info!(port = app.port(), "user service listening");
    app.run_until_stopped().await?;
    Ok(())
}
