def test_project_fixture_creates_program_and_project(admin, project):
    assert admin.find(project, project)["type"] == "project"
    assert admin.health().counts == {"program": 1, "project": 1}
