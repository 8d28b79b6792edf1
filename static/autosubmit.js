// Submits the SAML form on load (a button remains for browsers without JavaScript).
document.getElementById("saml-post").submit();
