using Atp.Core.Policy;

namespace Atp.Core.Tests.Policy;

public sealed class PolicyDocumentTests
{
    [Fact]
    public void A_classification_survives_the_stored_form_and_compares_by_its_pointers()
    {
        var document = new PolicyDocument(true, null) { Classification = new FieldClassification(["/data/email", "/data/a~1b"]) };

        var read = PolicyDocument.FromJson(document.ToJson());

        Assert.Equal(document, read);
        Assert.Equal(["/data/email", "/data/a~1b"], read.Classification!.Pii);
        Assert.NotEqual(document, document with { Classification = new FieldClassification(["/data/email"]) });
        Assert.NotEqual(document, document with { Classification = null });
    }

    [Fact]
    public void A_classifications_data_subject_survives_the_stored_form_and_takes_part_in_equality()
    {
        var byTarget = new PolicyDocument(null, null) { Classification = new FieldClassification(["/data/email"]) { SubjectTargetType = "customer" } };

        var read = PolicyDocument.FromJson(byTarget.ToJson());

        Assert.Equal("customer", read.Classification!.SubjectTargetType);
        Assert.Equal(byTarget, read);
        Assert.NotEqual(byTarget, byTarget with { Classification = new FieldClassification(["/data/email"]) });
        Assert.Null(PolicyDocument.FromJson(new PolicyDocument(null, null) { Classification = new FieldClassification(["/data/email"]) }.ToJson()).Classification!.SubjectTargetType);
    }

    [Fact]
    public void Secret_pointers_survive_the_stored_form_and_one_inside_another_classified_value_is_refused()
    {
        var document = new PolicyDocument(null, null) { Classification = new FieldClassification(["/data/email"]) { Secret = ["/data/password"] } };

        var read = PolicyDocument.FromJson(document.ToJson());

        Assert.Equal(["/data/password"], read.Classification!.Secret);
        Assert.Equal(document, read);
        Assert.NotEqual(document, document with { Classification = new FieldClassification(["/data/email"]) });

        var errors = new List<string>();
        using var nested = System.Text.Json.JsonDocument.Parse("""{"pii":["/data/user"],"secret":["/data/user/password"]}""");
        FieldClassification.Read(nested.RootElement, "classification", errors);
        Assert.Contains(errors, e => e.StartsWith("classification.secret:", StringComparison.Ordinal));
    }

    [Fact]
    public void A_document_stored_before_classification_existed_reads_without_one()
    {
        var read = PolicyDocument.FromJson("""{"requireRegisteredTypes":true,"requireSignedRequests":null}""");

        Assert.Null(read.Classification);
        Assert.Equal(new PolicyDocument(null, true), read);
    }

    [Fact]
    public void Erasure_approval_survives_the_stored_form_and_a_document_stored_before_it_existed_reads_it_as_null()
    {
        var document = new PolicyDocument(null, null) { RequireErasureApproval = true };

        var read = PolicyDocument.FromJson(document.ToJson());

        Assert.Equal(document, read);
        Assert.True(read.RequireErasureApproval);
        Assert.Contains("\"requireErasureApproval\":true", document.ToJson(), StringComparison.Ordinal);
        Assert.NotEqual(document, document with { RequireErasureApproval = false });
        Assert.NotEqual(document, document with { RequireErasureApproval = null });
        Assert.Null(PolicyDocument.FromJson("""{"requireRegisteredTypes":null,"requireSignedRequests":null,"classification":null,"retention":null}""").RequireErasureApproval);
    }
}
