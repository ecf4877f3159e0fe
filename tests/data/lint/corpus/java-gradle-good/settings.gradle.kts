rootProject.name="app"
